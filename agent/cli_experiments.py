"""``growthloop experiments``: planned experiments (agent/experiments.py) - create one from a
YAML file, list them, show one's results, start, stop or promote one. Safe while daemons run on
the same database: every change is one compare-and-set transaction. A bad file or an impossible
command (an unknown id, a promotion without a winner) prints what is wrong and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from agent.cli_support import ConfigOption, load, out, with_store
from agent.config import Config
from agent.errors import ExperimentError
from agent.models import Experiment, ExperimentStatus

experiments_app = typer.Typer(
    help="Planned experiments (A/B tests): create from a YAML file, list, show, stop, promote.",
    no_args_is_help=True,
)
T = TypeVar("T")
ExperimentId = Annotated[int, typer.Argument(help="The experiment's id (`experiments list`).")]


def _run(cfg: Config, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    return with_store(cfg, work, refusals=(ExperimentError,))


async def _get(store: Any, experiment_id: int) -> Experiment:
    found: Experiment | None = await store.get_experiment(experiment_id)
    if found is None:
        raise ExperimentError(f"there is no experiment {experiment_id} (see `experiments list`)")
    return found


@experiments_app.command("create")
def experiments_create(
    file: Annotated[Path, typer.Argument(help="The experiment, in YAML (docs/experiments.md).")],
    config: ConfigOption = None,
) -> None:
    """Create an experiment from FILE (validated; sized from the account's history) and start
    it unless the file says ``start: false``."""
    from agent.experiment_spec import create, read

    cfg = load(config)
    spec = _checked(lambda: read(file))

    async def work(store: Any) -> Experiment:
        return await create(store, cfg, spec, now=datetime.now(UTC))

    made = _run(cfg, work)
    out.print(
        f"[green]created[/] experiment {made.id} ({made.plan.name}, {made.status.value}): "
        f"up to {made.plan.max_posts_per_variant} posts per variant or "
        f"{made.plan.max_days:g} days",
        highlight=False,
    )


def _checked(read: Callable[[], T]) -> T:
    from agent.cli_support import fail

    try:
        return read()
    except ExperimentError as exc:
        fail(str(exc), 2)
        raise


@experiments_app.command("list")
def experiments_list(config: ConfigOption = None) -> None:
    """Every experiment with its status and decision."""

    async def work(store: Any) -> tuple[list[Experiment], dict[int, str]]:
        return await store.experiments(), await store.account_names()

    found, names = _run(load(config), work)
    table = Table("id", "account", "name", "varies", "metric", "status", "winner", "decision")
    for e in found:
        table.add_row(
            str(e.id),
            names.get(e.account_id, str(e.account_id)),
            e.plan.name,
            e.dimension,
            e.plan.metric,
            e.status.value + (" (promoted)" if e.promoted else ""),
            e.winner or "",
            e.decision or "",
        )
    out.print(table if found else "no experiments")


@experiments_app.command("show")
def experiments_show(experiment_id: ExperimentId, config: ConfigOption = None) -> None:
    """One experiment: its plan, each variant's posts and mean with a 95% interval of its
    difference from the control, and the decision with its reason."""
    from agent.experiments import samples
    from learning.experiments import welch_ttest

    cfg = load(config)

    async def work(store: Any) -> tuple[Experiment, dict[str, Any]]:
        e = await _get(store, experiment_id)
        method = cfg.learning.attribution_method
        return e, await samples(store, e, method=method, now=datetime.now(UTC))

    e, found = _run(cfg, work)
    plan = e.plan
    out.print(f"[bold]experiment {e.id}[/]: {plan.name} ({e.status.value})", highlight=False)
    out.print(f"hypothesis: {plan.hypothesis}", highlight=False)
    out.print(
        f"varies {plan.dimension}; metric {plan.metric}; MDE {plan.mde:+.0%} of "
        f"{plan.baseline_mean:.4g} (sd {plan.baseline_sd:.4g}); alpha {plan.alpha}, power "
        f"{plan.power}; up to {plan.max_posts_per_variant} posts per variant or "
        f"{plan.max_days:g} days",
        highlight=False,
    )
    control = next(v for v in e.variants if v.control)
    table = Table("variant", "value", "posts", "mean", "vs control (95%)", "state")
    for v in e.variants:
        s = found[v.name]
        interval = ""
        if not v.control and s.n >= 2 and found[control.name].n >= 2:
            t = welch_ttest(found[control.name].values, s.values)
            interval = f"{t.estimate:+.4g} [{t.low:+.4g}, {t.high:+.4g}]"
        state = "control" if v.control else ""
        if not v.active:
            state = f"stopped: {v.stopped_reason}"
        table.add_row(v.name, v.value, str(s.n), f"{s.mean:.4g}", interval, state)
    out.print(table)
    if e.decision:
        out.print(f"decision: {e.decision}; winner: {e.winner or 'none'}", highlight=False)
        out.print(f"reason: {e.reason}", highlight=False)
    if e.promoted:
        out.print(f"promoted at {e.promoted_at:%Y-%m-%d %H:%M} UTC", highlight=False)


@experiments_app.command("start")
def experiments_start(experiment_id: ExperimentId, config: ConfigOption = None) -> None:
    """Start a draft experiment."""

    async def work(store: Any) -> None:
        await _get(store, experiment_id)
        ok = await store.set_experiment_status(
            experiment_id,
            expected=[ExperimentStatus.DRAFT],
            status=ExperimentStatus.RUNNING,
            now=datetime.now(UTC),
        )
        if not ok:
            raise ExperimentError(f"experiment {experiment_id} is not a draft")

    _run(load(config), work)
    out.print(f"[green]started[/] experiment {experiment_id}", highlight=False)


@experiments_app.command("stop")
def experiments_stop(
    experiment_id: ExperimentId,
    config: ConfigOption = None,
    winner: Annotated[
        str | None, typer.Option(help="Declare this variant the winner (then promote it).")
    ] = None,
) -> None:
    """Stop an experiment by hand (no more posts assigned); ``--winner`` records a winner."""

    async def work(store: Any) -> None:
        e = await _get(store, experiment_id)
        if winner is not None and winner not in {v.name for v in e.variants}:
            names = ", ".join(v.name for v in e.variants)
            raise ExperimentError(f"--winner: no variant {winner!r} (variants: {names})")
        ok = await store.set_experiment_status(
            experiment_id,
            expected=[ExperimentStatus.DRAFT, ExperimentStatus.RUNNING],
            status=ExperimentStatus.STOPPED,
            now=datetime.now(UTC),
            winner=winner,
            decision="manual",
            reason="stopped by a person" + (f", winner {winner}" if winner else ""),
        )
        if not ok:
            raise ExperimentError(f"experiment {experiment_id} has ended already")

    _run(load(config), work)
    out.print(f"[yellow]stopped[/] experiment {experiment_id}", highlight=False)


@experiments_app.command("promote")
def experiments_promote(
    experiment_id: ExperimentId,
    config: ConfigOption = None,
    undo: Annotated[bool, typer.Option("--undo", help="Undo the promotion.")] = False,
) -> None:
    """Apply an ended experiment's winner (losing arms retired, or its voice the default), or
    undo it; written to learning_updates with the evidence."""
    from agent.experiments import promote

    async def work(store: Any) -> Experiment:
        e = await _get(store, experiment_id)
        if e.winner is None:
            raise ExperimentError(f"experiment {experiment_id} has no winner to promote")
        if not await promote(store, e, now=datetime.now(UTC), undo=undo):
            state = "not promoted" if undo else "promoted already, or still running"
            raise ExperimentError(f"experiment {experiment_id} is {state}")
        return e

    e = _run(load(config), work)
    verb = "undid the promotion of" if undo else "promoted"
    value = e.variant(e.winner or "").value
    out.print(
        f"[green]{verb}[/] {e.winner} ({value}) of experiment {experiment_id}", highlight=False
    )
