"""How does the real daemon scale with the number of accounts, on SQLite and PostgreSQL?

    python -m bench.scale [--accounts 10,100,1000,10000] [--backend sqlite,postgresql]
                          [--workers 2,4] [--workers-accounts 1000] [--burst-accounts 1000]
                          [--latency-ms 200] [--factor F] [--json OUT] [--markdown OUT] [--quick]

Each case runs the real daemon (``agent.daemon.Daemon`` with APScheduler, the real store, the
sandbox built by ``agent.bootstrap.build`` from a config file) in its own processes, on a fresh
SQLite file or a fresh PostgreSQL database (created on ``GROWTHLOOP_BENCH_PG_URL``, default the
tests' server, and dropped); how a case runs and what it measures is in
:mod:`bench.scale_case`. The default run:

- **one process**, every ``--backend`` x every ``--accounts``: start-up (real seconds and ticks to
  every account planned), RSS, CPU per simulated hour idle and busy, publish and snapshot
  lateness, compressed by a factor that shrinks as the accounts grow (``FACTORS``);
- **several workers** on one PostgreSQL database (``--workers``, ``--workers-accounts``
  accounts): throughput of the burst and no double work, the workers sharing one sandbox world
  file;
- **the burst** (``--burst-accounts``, SQLite, uncompressed): that many posts due at once with a
  ``--latency-ms`` publish round trip, measured until the last is published.

``--quick`` is the test suite's run: a handful of accounts, short windows, one backend.
Progress shows as a rich bar on a terminal and as plain lines elsewhere; the results print as a
table and go to ``--json`` and ``--markdown``. Linux only (CPU and memory are read in /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.progress_lines import ProgressLines
from bench.scale_case import Case, Result, run_case

ACCOUNTS = (10, 100, 1000, 10000)
BACKENDS = ("sqlite", "postgresql")
# accounts -> compression of the running phase: a simulated hour takes 3600 / factor real s
FACTORS = ((10, 240.0), (100, 120.0), (1000, 60.0), (10**9, 30.0))


SATURATED = 0.85  # CPU s per real s: the compressed process skipped ticks
KEPT_UP = 0.9  # of the follower readings due: fewer, and the idle window did less than it should


def factor_for(accounts: int) -> float:
    return next(f for limit, f in FACTORS if accounts <= limit)


def plan(args: argparse.Namespace) -> list[Case]:
    """The cases to run, in order."""
    common = {
        "latency_ms": args.latency_ms,
        "read_latency_ms": args.read_latency_ms,
        "idle_minutes": args.idle_minutes,
        "busy_minutes": args.busy_minutes,
        "startup_timeout": args.startup_timeout,
    }
    cases = []
    phases = tuple(  # a zero-minute window is left out (--busy-minutes 0: idle figures only)
        phase
        for phase, minutes in (("idle", args.idle_minutes), ("busy", args.busy_minutes))
        if minutes > 0 and not args.startup_only
    )
    for accounts in args.accounts:
        for backend in args.backend:
            factor = args.factor or factor_for(accounts)
            cases.append(
                Case(backend=backend, accounts=accounts, factor=factor, phases=phases, **common)
            )
    for workers in args.workers:
        factor = args.factor or factor_for(args.workers_accounts)
        cases.append(
            Case(
                backend="postgresql",
                accounts=args.workers_accounts,
                workers=workers,
                factor=factor,
                phases=("busy",),
                world="file",
                **common,
            )
        )
    if args.burst_accounts:
        cases.append(
            Case(
                backend=args.burst_backend,
                accounts=args.burst_accounts,
                factor=args.burst_factor,
                phases=("burst",),
                **common,
            )
        )
    return cases


class Progressor:
    """A rich bar per phase on a terminal; a plain line every 10 % of a phase elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.terminal = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not self.terminal,
        )
        self._case = ""
        self._phase = ""
        self._task: TaskID | None = None
        self._lines: ProgressLines | None = None

    def case(self, label: str) -> None:
        self._case, self._phase = label, ""

    def __call__(self, phase: str, done: float, total: float, detail: str) -> None:
        if phase != self._phase:
            self._phase = phase
            if self._task is not None:
                self.progress.remove_task(self._task)
            name = f"{self._case}: {phase}"
            self._task = self.progress.add_task(name, total=max(total, 1e-9), detail=detail)
            self._lines = (
                None
                if self.terminal
                else ProgressLines(self.console, label=name, total=max(total, 1e-9), every=0.1)
            )
        assert self._task is not None
        self.progress.update(self._task, completed=done, total=max(total, 1e-9), detail=detail)
        if self._lines is not None:
            self._lines.update(done, detail)


def figure(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


COLUMNS = (
    "case",
    "xF",
    "ready s",
    "planned s (ticks)",
    "RSS MB (peak)",
    "idle CPU % core",
    "busy CPU s/sim h",
    "publish late p50/p95 s",
    "snapshot late p50/p95 s",
    "backlog posts/snaps",
    "burst posts/real min",
    "double work",
)


def row(result: Result) -> list[str]:
    case, idle, busy = result.case, result.idle, result.busy
    label = f"{case['backend']} {case['accounts']:,}"
    if case["workers"] > 1:
        label += f" x{case['workers']} workers"
    if "burst" in case["phases"]:
        label += " burst"
    if not result.ok:
        return [label, figure(case["factor"], 0), f"failed: {result.error}"] + [""] * 9
    double = result.double_work
    return [
        label,
        figure(case["factor"], 0),
        figure(result.ready_s),
        f"{figure(result.planned_s)} ({figure(result.planned_ticks)})",
        f"{figure(result.rss_mb_started, 0)} ({figure(result.rss_mb_peak, 0)})",
        idle_cpu(idle),
        figure(busy.get("cpu_s_per_sim_hour")),
        f"{figure(busy.get('publish_late_p50_s'))} / {figure(busy.get('publish_late_p95_s'))}",
        f"{figure(busy.get('snapshot_late_p50_s'))} / {figure(busy.get('snapshot_late_p95_s'))}",
        f"{figure(busy.get('publish_backlog'))} / {figure(busy.get('snapshot_backlog'))}",
        figure(busy.get("posts_per_real_min")),
        "-" if not double else "none" if double.get("none") else f"YES {double}",
    ]


def idle_cpu(idle: dict[str, Any]) -> str:
    """The idle share of a core, marked when it is a lower bound: the compressed process was
    busy most of the time, or did not keep up with its follower readings."""
    text = figure(idle.get("core_pct"), 2)
    if (idle.get("saturation") or 0) > SATURATED:
        text += " sat."
    expected = idle.get("follower_reads_expected") or 0
    if expected and idle.get("follower_reads", 0) < KEPT_UP * expected:
        text += f" ({idle['follower_reads'] / expected:.0%} of reads)"
    return text


def table(results: list[Result]) -> Table:
    out = Table(title="Scale: the daemon with N sandbox accounts")
    for column in COLUMNS:
        out.add_column(column, justify="left" if column == "case" else "right")
    for result in results:
        out.add_row(*row(result))
    return out


def markdown(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    import sqlite3

    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def number_list(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part.replace("_", "")) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas: {value!r}"
        ) from None
    if any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError(f"every number must be at least 1: {value!r}")
    return numbers


def backend_list(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(BACKENDS)} separated by commas: {value!r}"
        )
    return names


def non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value!r}")
    return number


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--accounts",
        type=lambda v: number_list(v) if v else (),
        default=ACCOUNTS,
        help="one process, each backend ('' for none)",
    )
    parser.add_argument("--backend", type=backend_list, default=BACKENDS)
    parser.add_argument(
        "--workers",
        type=lambda v: number_list(v) if v else (),
        default=(2, 4),
        help="worker processes on one PostgreSQL ('' for none)",
    )
    parser.add_argument("--workers-accounts", type=int, default=1000)
    parser.add_argument("--burst-accounts", type=int, default=1000, help="0: no burst case")
    parser.add_argument("--burst-backend", choices=BACKENDS, default="sqlite")
    parser.add_argument(
        "--burst-factor", type=non_negative, default=1.0, help="compression of the burst case"
    )
    parser.add_argument(
        "--latency-ms", type=non_negative, default=200.0, help="a publish's round trip"
    )
    parser.add_argument("--read-latency-ms", type=non_negative, default=0.0)
    parser.add_argument(
        "--factor", type=non_negative, default=0.0, help="compression (default: by accounts)"
    )
    parser.add_argument("--idle-minutes", type=non_negative, default=20.0, help="simulated")
    parser.add_argument("--busy-minutes", type=non_negative, default=80.0, help="simulated")
    parser.add_argument("--startup-timeout", type=non_negative, default=900.0, help="real s")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--keep", type=Path, help="keep each case's files under this folder")
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="one-process cases: only start-up and RSS (no idle or busy window)",
    )
    parser.add_argument("--quick", action="store_true", help="the test suite's tiny run")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts = (3,) if args.accounts == ACCOUNTS else args.accounts
        args.backend = ("sqlite",) if args.backend == BACKENDS else args.backend
        args.workers = () if args.workers == (2, 4) else args.workers
        args.workers_accounts = min(args.workers_accounts, 4)
        args.burst_accounts = min(args.burst_accounts, 5)
        # a loaded CI machine stalls a second now and then: 4 simulated minutes at x240
        args.factor = args.factor or 240.0
        args.burst_factor = max(args.burst_factor, 60.0)
        args.startup_timeout = min(args.startup_timeout, 90.0)
    if (args.factor and args.factor < 1) or args.burst_factor < 1:
        parser.error("--factor and --burst-factor must be at least 1")
    return args


async def run(args: argparse.Namespace, console: Console) -> list[Result]:
    results: list[Result] = []
    progress = Progressor(console)
    with progress.progress:
        for index, case in enumerate(plan(args)):
            progress.case(case.label)
            if args.keep:
                folder = args.keep / f"{index:02d}-{case.label.replace(' ', '-')}"
                folder.mkdir(parents=True, exist_ok=False)
                result = await run_case(case, folder, progress)
            else:
                with tempfile.TemporaryDirectory(prefix="growthloop-scale-") as tmp:
                    result = await run_case(case, Path(tmp), progress)
            results.append(result)
            progress.progress.console.print(
                f"{case.label}: {'done' if result.ok else 'FAILED: ' + str(result.error)} "
                f"in {result.wall_s:g} s",
                highlight=False,
            )
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console = Console(stderr=True)
    results = asyncio.run(run(args, console))
    Console(width=max(Console().width, 200)).print(table(results))
    info = machine()
    console.print(
        f"{info['processor']}, {info['cpus']} CPUs, Python {info['python']}, SQLite "
        f"{info['sqlite']}, load average {info['load_average']}",
        highlight=False,
    )
    if args.json:
        payload = {
            "machine": info,
            "arguments": {k: v for k, v in vars(args).items() if k not in ("json", "markdown")},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(results), encoding="utf-8")
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
