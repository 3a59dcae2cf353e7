"""The `growthloop` command line (Typer). `python -m agent` runs the same thing.

Every option can also come from a ``GROWTHLOOP_*`` environment variable (shown in ``--help``).
Errors a user can fix print one paragraph and exit with code 2, a database that cannot be reached
with code 1, never a traceback (:mod:`agent.cli_support`). ``drafts``, ``posts``,
``audience`` and ``experiments`` live in :mod:`agent.cli_drafts`, :mod:`agent.cli_posts`,
:mod:`agent.cli_audience` and :mod:`agent.cli_experiments`.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli_audience import audience_app
from agent.cli_drafts import drafts_app
from agent.cli_experiments import experiments_app
from agent.cli_insights import insights_app
from agent.cli_posts import posts_app
from agent.cli_report import report
from agent.cli_support import ConfigOption, err, fail, guarded, out
from agent.cli_support import load as _load
from agent.config import Config
from agent.errors import ConfigError, StoreError

app = typer.Typer(
    name="growthloop",
    help="An autonomous posting agent that learns what grows an account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
accounts_app = typer.Typer(help="Check the configured accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(drafts_app, name="drafts")
app.add_typer(posts_app, name="posts")
app.add_typer(insights_app, name="insights")
app.command()(report)
app.add_typer(audience_app, name="audience")
app.add_typer(experiments_app, name="experiments")

STORE_WAIT = 60.0  # seconds `run` waits for a database that cannot be reached yet


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"growthloop {version('growthloop')}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print growthloop's version and exit.",
        ),
    ] = False,
) -> None:
    """An autonomous posting agent that learns what grows an account."""


@config_app.command("check")
def config_check(
    path: Annotated[Path | None, typer.Argument(help="The file to check.")] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a config file (and the secrets its accounts need)."""
    from agent.config import check_account_secrets

    cfg = _load(path or config)
    try:
        check_account_secrets(cfg)
    except ConfigError as exc:
        fail(str(exc), 2)
    names = ", ".join(f"{a.name} ({a.platform})" for a in cfg.accounts)
    out.print(f"[green]ok[/] {path or config or 'built-in config'}: {names}", highlight=False)


@config_app.command("example")
def config_example() -> None:
    """Print the built-in example config (commented), a starting point for your own."""
    from agent.config import example_config_text

    sys.stdout.write(example_config_text())


@accounts_app.command("check")
def accounts_check(config: ConfigOption = None) -> None:
    """Verify every account's credentials without posting; print limits and followers."""
    from agent.accounts import check_accounts, print_checks

    cfg = _load(config)

    async def go() -> int:
        results = await check_accounts(cfg)
        print_checks(out, results)
        return 0 if all(r.ok for r in results) else 1

    raise typer.Exit(guarded(go))


@app.command()
def migrate(
    config: ConfigOption = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of applying it.")
    ] = False,
) -> None:
    """Apply database migrations (DATABASE_URL, or the SQLite file of the config)."""
    from agent.bootstrap import store_error, store_url
    from agent.logs import redact_text
    from agent.store import migrate as migrations
    from agent.store.engine import create_engine

    cfg = _load(config)

    async def go() -> None:
        url = store_url(cfg)
        if sql:
            sys.stdout.write(migrations.offline_sql(url.replace("+asyncpg", "")))
            return
        engine = create_engine(url)
        try:
            before, after = await migrations.upgrade(engine)
        except Exception as exc:
            translated = store_error(exc, url=url)
            if translated is not None:
                raise translated from None
            raise StoreError(f"{type(exc).__name__}: {redact_text(str(exc))}") from None
        finally:
            await engine.dispose()
        out.print(f"database at revision [bold]{after}[/] (was {before or 'empty'})")

    guarded(go)


StoreWaitOption = Annotated[
    float,
    typer.Option(
        "--store-wait",
        envvar="GROWTHLOOP_STORE_WAIT",
        show_envvar=True,
        min=0,
        metavar="SECONDS",
        help="How long to wait at start for a database that cannot be reached yet (retrying "
        "with backoff; said on stderr within 2 s).",
    ),
]


@app.command()
def run(
    config: ConfigOption = None,
    store_wait: StoreWaitOption = STORE_WAIT,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="A compressed real-time demo on the sandbox: plan, publish, poll and learn "
            "within a minute, in its own files (demo.db beside the config's SQLite file, "
            "replaced each run). Publishes nowhere real; DATABASE_URL is not used.",
            envvar="GROWTHLOOP_DEMO",
            show_envvar=True,
        ),
    ] = False,
) -> None:
    """Run the daemon in real time (SIGTERM or Ctrl-C stops it cleanly; a second one at once)."""
    import os

    from agent import signals
    from agent.bootstrap import build, port_from_env, store_url
    from agent.clock import SystemClock
    from agent.config import with_dotenv
    from agent.daemon import Daemon
    from agent.dashboard.access import Access
    from agent.demo import demo_config, fresh_demo_files
    from agent.logs import configure_logging, log
    from agent.store.lockfile import lock_store

    cfg = _load(config)
    configure_logging()
    try:  # a short dashboard or metrics token is refused before anything starts
        access = Access.from_environ(with_dotenv(os.environ))
    except ConfigError as exc:
        fail(str(exc), 2)
    sqlite_path = None
    if demo:  # its own SQLite file, whatever DATABASE_URL says
        cfg = demo_config(cfg)
        sqlite_path = cfg.store.sqlite_path

    async def go() -> int:
        url = store_url(cfg, sqlite_path=sqlite_path)
        lock = lock_store(url)  # SQLite: one daemon per file
        try:
            if demo:
                fresh_demo_files(cfg)  # under the lock: never another demo's files
            # Until the daemon installs its own handlers, SIGTERM/SIGINT stop the start-up (the
            # wait for a database that cannot be reached yet) cleanly: nothing runs yet.
            main = asyncio.current_task()
            assert main is not None

            def stop_starting(sig: Any) -> None:
                main.cancel(sig.name)

            remove = signals.install(stop_starting)
            try:
                built = await build(
                    cfg,
                    clock=SystemClock(),
                    seed=None,
                    sqlite_path=sqlite_path,
                    store_wait=store_wait,
                    journal=True,
                    alerts=not demo,  # the demo's sandbox troubles page nobody
                )
            except asyncio.CancelledError as stop:
                log.info("daemon_stopped", exit_code=0, during="start-up", signal=str(stop))
                return 0
            finally:
                remove()
            try:
                daemon = Daemon(
                    built.agent,
                    host=cfg.server.host,
                    port=port_from_env(cfg.server.port),
                    store_url=url,
                    config_path=config,
                    environ=os.environ,
                    demo=demo,
                    access=access,
                )
                return await daemon.run()
            finally:
                await built.aclose()
        finally:
            if lock is not None:
                lock.release()

    code = guarded(go)
    raise typer.Exit(code)


class SimulationStore(StrEnum):
    """``simulate --store``: where the run's data lives while it runs."""

    memory = "memory"
    sqlite = "sqlite"


class GeneratorKind(StrEnum):
    """``simulate --generator``: overrides the config's generator.kind."""

    template = "template"
    openai = "openai"


@app.command()
def simulate(
    days: Annotated[float, typer.Option(help="Simulated days to run.", min=0.01)] = 30,
    scenario: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|FILE",
            help="A shipped scenario's name (default, drifting, small_account...) or a scenario "
            "file (default: the config's sandbox.scenario).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the world and the policy.")] = 1,
    db: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file for the run's data, replaced on each run (default: simulation.db "
            "beside the config's store.sqlite_path, e.g. ./data/ for the built-in config)."
        ),
    ] = None,
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every event.")] = False,
    generator: Annotated[
        GeneratorKind | None,
        typer.Option(
            help="Who writes the posts (default: the config's generator.kind).",
            case_sensitive=False,
            envvar="GROWTHLOOP_GENERATOR",
            show_envvar=True,
        ),
    ] = None,
    store: Annotated[
        SimulationStore,
        typer.Option(
            help="Where the run's data lives while it runs: memory (fast; copied into --db at "
            "the end) or sqlite (written to --db as it goes).",
            case_sensitive=False,
            envvar="GROWTHLOOP_SIMULATE_STORE",
            show_envvar=True,
        ),
    ] = SimulationStore.memory,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="DIR",
            help="Where the run's HTML report and markdown summary go, with the true values "
            "beside the estimates (default: report/ beside --db).",
            envvar="GROWTHLOOP_SIMULATE_REPORT",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Run the cycles in simulated time against the sandbox, summarise what was learned, and
    write the report (growthloop report) with the simulated audience's truth beside it."""
    from agent.logs import configure_logging
    from agent.store.lockfile import hold_sqlite_lock

    cfg = _load(config)
    if scenario is not None:
        scenario = _scenario_option(scenario)
    db = cfg.store.sqlite_path.parent / "simulation.db" if db is None else db
    accounts = [a.model_copy(update={"platform": "sandbox"}) for a in cfg.accounts]
    sandbox = cfg.sandbox.model_copy(update={"scenario": scenario} if scenario else {})
    update: dict[str, Any] = {"accounts": accounts, "sandbox": sandbox}
    if generator is not None:
        update["generator"] = cfg.generator.model_copy(update={"kind": generator.value})
    cfg = cfg.model_copy(update=update)
    # the summary reports rejected drafts; per-event logs only with --verbose
    configure_logging(level="debug" if verbose else "error")
    try:
        lock = hold_sqlite_lock(db)  # before the file is replaced: one simulation per file
        fresh_sqlite_file(db)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise
    try:
        report_to = db.parent / "report" if report_dir is None else report_dir
        guarded(
            lambda: _simulate(cfg, days=days, seed=seed, db=db, store=store, report_dir=report_to)
        )
    finally:
        lock.release()


def _scenario_option(ref: str) -> str:
    """``--scenario``: a shipped scenario's name, or a file (relative to the working directory,
    as every path on the command line)."""
    from adapters.scenario_files import checked_reference, is_scenario_name

    try:
        checked = checked_reference(ref, base=Path.cwd())
    except ValueError as exc:
        fail(f"--scenario: {exc}.", 2)
        raise
    if not is_scenario_name(checked) and not Path(checked).is_file():
        fail(f"Scenario file {ref} does not exist.", 2)
    return checked


def fresh_sqlite_file(db: Path) -> None:
    """Make sure the run starts from an empty database file."""
    from agent.store.engine import ensure_writable_dir

    ensure_writable_dir(db.parent)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


async def _simulate(
    cfg: Config,
    *,
    days: float,
    seed: int,
    db: Path,
    store: SimulationStore = SimulationStore.memory,
    report_dir: Path | None = None,
) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agent.bootstrap import build, save_sqlite
    from agent.clock import VirtualClock
    from agent.progress_lines import ProgressLines
    from agent.simulator import run_until
    from agent.store.memory import MemoryStore
    from agent.summary import print_summary

    start = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    clock = VirtualClock(start)
    built = await build(
        cfg,
        clock=clock,
        seed=seed,
        sqlite_path=db,
        world_in_memory=True,
        store="memory" if store is SimulationStore.memory else "sql",
    )
    end = start + timedelta(days=days)
    try:
        with Progress(
            TextColumn("[bold]simulating[/]"),
            BarColumn(),
            TextColumn("day {task.fields[day]:.1f}/{task.fields[days]:g}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task("sim", total=days, day=0.0, days=days)
            # off a terminal (CI logs, pipes) the bar draws nothing: a line every 5 % instead
            lines = None if err.is_terminal else ProgressLines(err, label="simulating", total=days)

            def tick(now: datetime) -> None:
                elapsed = (now - start).total_seconds() / 86400
                progress.update(task, completed=elapsed, day=elapsed)
                if lines is not None:
                    lines.update(elapsed, f"day {elapsed:.1f}/{days:g}")

            result = await run_until(built.agent, clock, end, progress=tick)
            progress.update(task, completed=days, day=days)
            if lines is not None:
                lines.update(days, f"day {days:g}/{days:g}")
        if isinstance(built.store, MemoryStore):
            await save_sqlite(built.store, db)  # the run's data, for SQL queries afterwards
        await print_summary(out, built, result, db=db)
        if report_dir is not None:
            await _simulation_report(built, result, cfg, days=days, out_dir=report_dir)
    finally:
        await built.aclose()


async def _simulation_report(
    built: Any, result: Any, cfg: Config, *, days: float, out_dir: Path
) -> None:
    """The run's report, with the simulated audience's truth beside the estimates."""
    from agent.report.files import write_report

    truth = built.world.ground_truth() if built.world is not None else None
    try:
        _report, written = await write_report(
            built.store,
            cfg,
            out_dir=out_dir,
            end=result.end,
            days=days,
            truth=truth,
            title="growthloop simulation report",
            notes=(
                f"A simulation of {days:g} days on the sandbox (scenario "
                f"{cfg.sandbox.scenario}). True values are the simulated audience's "
                "expectations, which the agent never sees.",
            ),
        )
    except OSError as exc:
        fail(f"Could not write the report into {out_dir}: {exc}", 2)
        raise
    out.print(f"\nReport: {written.html}\nSummary: {written.markdown}", highlight=False)


@app.command()
def health(
    config: ConfigOption = None,
    hours: Annotated[int, typer.Option(help="How many hourly rows to show.")] = 12,
) -> None:
    """Print the latest health metrics and the pending work from the store."""
    from agent.bootstrap import open_store, store_url
    from agent.summary import print_controls, print_health

    cfg = _load(config)

    async def go() -> None:
        store = await open_store(store_url(cfg), auto_migrate=False)
        try:
            now = datetime.now(UTC)
            await print_health(out, store, hours=hours, now=now)
            await print_controls(out, store, cfg, now=now)
        finally:
            await store.close()

    guarded(go)


def _operator() -> str:
    """Who flipped the switch, for ``runtime_state.updated_by``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _set_paused(cfg: Config, *, paused: bool, reason: str) -> tuple[bool, str | None]:
    """Flip the kill switch in the store; returns the state before."""
    from agent.bootstrap import open_store, store_url

    async def go() -> tuple[bool, str | None]:
        store = await open_store(store_url(cfg), auto_migrate=False)
        try:
            before = await store.paused()
            await store.set_paused(paused, reason=reason, by=_operator(), now=datetime.now(UTC))
            return before
        finally:
            await store.close()

    return guarded(go)


@app.command()
def pause(
    config: ConfigOption = None,
    reason: Annotated[
        str,
        typer.Option(
            help="Why publishing stops (shown in the log and /healthz).",
            envvar="GROWTHLOOP_PAUSE_REASON",
            show_envvar=True,
        ),
    ] = "paused from the command line",
) -> None:
    """Stop every worker on this database from publishing (from its next publish cycle)."""
    cfg = _load(config)
    was_paused, was_reason = _set_paused(cfg, paused=True, reason=reason)
    before = f"already paused: {was_reason}" if was_paused else "was publishing"
    out.print(f"[bold yellow]publishing paused[/] ({reason}); {before}", highlight=False)


@app.command()
def resume(
    config: ConfigOption = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Lift the circuit breaker's suspension of this account (by its config name) "
            "instead of the kill switch.",
            envvar="GROWTHLOOP_RESUME_ACCOUNT",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Let the workers publish again (queued posts that fell due go out on the next cycle);
    with --account, lift that account's suspension (agent/breaker.py)."""
    cfg = _load(config)
    if account is not None:
        _resume_account(cfg, account)
        return
    was_paused, was_reason = _set_paused(cfg, paused=False, reason="resumed")
    if was_paused:
        out.print(f"[bold green]publishing resumed[/]; was paused: {was_reason}", highlight=False)
    else:
        out.print("publishing was not paused; nothing changed", highlight=False)


def _resume_account(cfg: Config, name: str) -> None:
    """Lift the suspension of the account ``name`` in the store (every worker sees it)."""
    from agent.bootstrap import open_store, store_url

    names = [a.name for a in cfg.accounts]
    if name not in names:
        err.print(
            f"No account {name!r} in the config; the accounts are: {', '.join(names)}.",
            highlight=False,
        )
        raise typer.Exit(2)

    async def go() -> str | None:
        store = await open_store(store_url(cfg), auto_migrate=False)
        try:
            held = {s.account: s for s in await store.suspensions()}.get(name)
            if held is None:
                return None
            await store.lift_suspension(held.account_id)
            return f"{held.reason}: {held.error_kind}: {held.detail}"
        finally:
            await store.close()

    was = guarded(go)
    if was is None:
        out.print(f"account {name!r} was not suspended; nothing changed", highlight=False)
    else:
        out.print(
            f"[bold green]account {name!r} resumed[/]; was suspended ({was})", highlight=False
        )


def main() -> Any:
    return app()
