"""One case of the scale benchmark: N sandbox accounts, K daemon processes, one store.

A case runs the real daemon (``bench/scale_worker.py``: ``growthloop run`` with a
:class:`agent.clock.ScaledClock`) twice on the same store, both times from a config written here:
the built-in example config with N copies of its account, its cadence, polling and 30 s tick.

1. **Start-up**, in real time (factor 1, the configured tick): the simulated day starts five
   hours before the active hours, so every account's first post is planned for the moment they
   begin (``learning.learn_hours`` is off so that the policy does not move it by an hour: N posts
   fall due at once). Measured: process start to ``daemon_started`` (``ready_s``), process start
   to every account having a post in the store (``planned_s``), and the latter in ticks from
   ``daemon_started``. Then the workers are stopped (SIGTERM).
2. **Running**, compressed ``factor`` times (``runtime.tick``, ``status_every``, the sandbox's
   latency divided by it; ``runtime.lease`` multiplied, so a claim still lasts two real minutes):
   restarted on the same store, the clock set so that after a warm-up (the first follower reads)
   ``idle_minutes`` of simulated time pass with every post queued and nothing due, then the first
   posts fall due (the burst) and ``busy_minutes`` follow with publishing and the 1 h polls.
   Measured per window: CPU seconds of the worker processes per simulated hour (``/proc``), the
   follower reads done, and at the end of the busy window publish lateness
   (``posted_at - scheduled_for``; a post still waiting counts with the window's end) and
   snapshot lateness (``taken_at - due_at``), p50 and p95, in simulated seconds, with the number
   still waiting (``backlog``). The ``burst`` phase (factor 1) instead waits until the burst is
   published and measures its lateness and throughput.

Compression makes lateness pessimistic: a tick is as long in simulated time as in production,
but processing takes ``factor`` times more simulated time, so lateness at factor F is an upper
bound of lateness in real time. CPU per simulated hour is what one real hour costs as long as
the process keeps up (``saturation``, CPU seconds per real second, well under 1); when it does
not, ticks are skipped and the figure is a lower bound.

No double work: every worker's JSON log is read for ``post_published`` (per content id) and
``snapshot_taken`` (per snapshot id) and each must appear once; with several workers the sandbox
world is one SQLite file they share, and its posts must be exactly the store's posted rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from agent.config import DEFAULT_CONFIG
from agent.schedule import in_active_hours, next_active_start
from bench.scale_store import (
    account_reads,
    fresh_store,
    lateness,
    planned_accounts,
    posted_by,
    store_double_work,
    store_engine,
    world_posts,
)

REPO = Path(__file__).resolve().parents[1]
DAY = datetime(2026, 1, 5, tzinfo=UTC)  # the simulated day (a Monday)
START_LEAD = timedelta(hours=5)  # start-up run: the day starts this long before the active hours
WARMUP = timedelta(minutes=10)  # running: first follower reads, before the idle window
STOP_WAIT = 30.0  # s: a worker's graceful stop before it is killed
SHUTDOWN_GRACE = 2.0  # s: runtime.shutdown_grace of the workers (stopping is not measured)
SAMPLE_EVERY = 0.5  # s between two looks at the store and /proc
# log events counted as problems (besides APScheduler skipping a tick that is still running)
PROBLEM_EVENTS = ("cycle_crashed", "cycle_failed", "store_unavailable", "post_publish_failed")
PROGRESS = Callable[[str, float, float, str], None]  # phase, done, total, detail


@dataclass(frozen=True, kw_only=True)
class Case:
    backend: str  # sqlite | postgresql
    accounts: int
    workers: int = 1
    factor: float = 60.0  # compression of the running phase
    phases: tuple[str, ...] = ("idle", "busy")  # or ("busy",), ("burst",), () start-up only
    latency_ms: float = 200.0  # a publish's round trip, in simulated (production) ms
    read_latency_ms: float = 0.0
    idle_minutes: float = 20.0  # simulated
    busy_minutes: float = 80.0  # simulated: the burst and its 1 h polls
    startup_timeout: float = 900.0  # real s for every account to be planned
    burst_timeout: float = 600.0  # real s for the burst to be published (phase "burst")
    world: str = "memory"  # memory: each worker's own; file: one shared file (several workers)

    @property
    def label(self) -> str:
        workers = f" x{self.workers}" if self.workers > 1 else ""
        burst = " burst" if "burst" in self.phases else ""
        return f"{self.backend} {self.accounts}{workers}{burst}"


@dataclass(kw_only=True)
class Result:
    case: dict[str, Any]
    ok: bool = True
    error: str | None = None
    ready_s: float | None = None
    planned_s: float | None = None
    planned_ticks: float | None = None
    rss_mb_started: float | None = None  # after start-up, per worker (the largest)
    rss_mb_peak: float | None = None  # VmHWM over both runs, per worker (the largest)
    idle: dict[str, Any] = field(default_factory=dict)
    busy: dict[str, Any] = field(default_factory=dict)
    double_work: dict[str, Any] = field(default_factory=dict)
    log_problems: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0


# -- /proc ------------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (the peak resident set) in MB; empty once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


# -- files --------------------------------------------------------------------------------------


def example_config() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return raw


def seconds(value: Any) -> float:
    from agent.config import parse_duration

    return float(parse_duration(value).total_seconds())


def write_config(case: Case, folder: Path, *, factor: float) -> Path:
    """The example config with ``case.accounts`` accounts, compressed ``factor`` times."""
    raw = example_config()
    template = raw["accounts"][0]
    raw["accounts"] = [
        {**template, "name": f"a{i:05d}", "handle": f"@bench_{i:05d}"} for i in range(case.accounts)
    ]
    runtime = raw.get("runtime", {})
    tick = seconds(runtime.get("tick", "30s"))
    raw["runtime"] = {
        **runtime,
        "tick": tick / factor,
        "status_every": 300 / factor,
        "lease": 120 * factor,  # a claim lasts two real minutes
        "shutdown_grace": SHUTDOWN_GRACE,  # not measured: a case ends sooner
        "journal_path": "journal.jsonl",
    }
    raw["learning"] = {**raw.get("learning", {}), "learn_hours": False}
    raw["store"] = {"sqlite_path": "store.db"}
    scenario = folder / f"scenario-x{factor:g}.yaml"
    platform = {"latency_ms": case.latency_ms / factor, "read_latency_ms": case.read_latency_ms}
    platform["read_latency_ms"] = case.read_latency_ms / factor
    scenario.write_text(
        yaml.safe_dump({"extends": "default", "name": "bench_scale", "platform": platform}),
        encoding="utf-8",
    )
    # a world file keeps the scenario it was created with: each run its own (no post is made
    # during the start-up run, so the running one loses nothing)
    raw["sandbox"] = {"scenario": str(scenario), "seed": 1, "world_path": world_file(factor)}
    raw["server"] = {"host": "127.0.0.1", "port": 0}
    path = folder / f"growthloop-x{factor:g}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def world_file(factor: float) -> str:
    """The sandbox world file of the run compressed ``factor`` times (in the case's folder)."""
    return f"world-x{factor:g}.db"


def first_due(config: dict[str, Any]) -> tuple[datetime, float, float]:
    """When the active hours begin on the simulated day, the tick and account_every (s)."""
    from agent.config import Cadence

    cadence = Cadence.model_validate(config.get("cadence", {}))
    start = next_active_start(DAY, cadence.active_hours)
    if in_active_hours(start - START_LEAD, cadence.active_hours):
        raise ValueError("the example config's active hours leave no night to start in")
    polling = config.get("polling", {})
    return (
        start,
        seconds(config.get("runtime", {}).get("tick", "30s")),
        seconds(polling.get("account_every", "10m")),
    )


# -- workers -------------------------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # Unix time

    def events(self) -> list[dict[str, Any]]:
        out = []
        with self.log.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        return out

    def ready_at(self) -> float | None:
        """The Unix time of its ``daemon_started`` line, once written."""
        try:
            with self.log.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if '"daemon_started"' in line:
                        stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                        return datetime.fromisoformat(stamp).timestamp()
        except (OSError, ValueError, KeyError):
            return None
        return None

    def tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_workers(
    case: Case,
    folder: Path,
    config: Path,
    *,
    run: str,
    start: datetime,
    factor: float,
    epoch: float,
) -> list[Worker]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
    env |= {
        "GROWTHLOOP_LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    }
    if case.backend == "postgresql":
        env["DATABASE_URL"] = (folder / "database_url").read_text().strip()
    workers = []
    for index in range(case.workers):
        log = folder / f"{run}-w{index}.log"
        command = [
            sys.executable,
            "-m",
            "bench.scale_worker",
            "--config",
            str(config),
            "--start",
            start.isoformat(),
            "--factor",
            f"{factor:g}",
            "--epoch",
            repr(epoch),
        ]
        if case.world == "memory":
            command.append("--world-in-memory")
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=sink
            )
        workers.append(Worker(proc=proc, log=log, started=time.time()))
    return workers


def stop_workers(workers: list[Worker]) -> list[int | None]:
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(worker.proc.wait(timeout=STOP_WAIT))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            codes.append(None)
    return codes


class WorkerDied(RuntimeError):
    pass


def check_alive(workers: list[Worker]) -> None:
    for worker in workers:
        code = worker.proc.poll()
        if code is not None:
            raise WorkerDied(f"a worker exited with code {code}:\n{worker.tail(8)}")


def cpu_total(workers: list[Worker]) -> float:
    return sum(cpu_seconds(w.proc.pid) for w in workers)


# -- running a case ------------------------------------------------------------------------------


async def wait_until(
    wall: float, workers: list[Worker], tick: Callable[[], Any] | None = None
) -> None:
    while (left := wall - time.time()) > 0:
        check_alive(workers)
        if tick is not None:
            await tick()
        await asyncio.sleep(min(SAMPLE_EVERY, left))


def peak_rss(workers: list[Worker], best: float | None) -> float | None:
    for worker in workers:
        hwm = memory_mb(worker.proc.pid).get("VmHWM")
        if hwm is not None:
            best = max(best or 0.0, hwm)
    return best


async def startup(
    case: Case, folder: Path, result: Result, engine: Any, progress: PROGRESS
) -> None:
    """Run 1, real time: how long until every account is planned."""
    raw = example_config()
    due, tick, _ = first_due(raw)
    config = write_config(case, folder, factor=1.0)
    started = time.time()
    workers = start_workers(
        case, folder, config, run="startup", start=due - START_LEAD, factor=1.0, epoch=started
    )
    try:
        deadline = started + case.startup_timeout
        planned = 0
        while planned < case.accounts:
            check_alive(workers)
            if time.time() > deadline:
                raise TimeoutError(
                    f"{planned}/{case.accounts} accounts planned after {case.startup_timeout:g} s"
                )
            planned = await planned_accounts(engine)
            progress("start-up", planned, case.accounts, f"{planned}/{case.accounts} planned")
            await asyncio.sleep(SAMPLE_EVERY / 2)
        done = time.time()
        readies = [w.ready_at() for w in workers]
        ready = max((r for r in readies if r is not None), default=done)
        result.ready_s = round(ready - started, 2)
        result.planned_s = round(done - started, 2)
        result.planned_ticks = round(max(0.0, done - ready) / tick, 2)
        result.rss_mb_started = max(
            (memory_mb(w.proc.pid).get("VmRSS", 0.0) for w in workers), default=None
        )
        result.rss_mb_peak = peak_rss(workers, result.rss_mb_peak)
    finally:
        stop_workers(workers)
        note_logs(result, workers)


async def running(
    case: Case, folder: Path, result: Result, engine: Any, progress: PROGRESS
) -> list[Worker]:
    """Run 2, compressed: the idle window, then the busy one (or the burst)."""
    raw = example_config()
    due, tick, account_every = first_due(raw)
    factor = case.factor
    config = write_config(case, folder, factor=factor)
    allowance = 1.2 * (result.ready_s or 10.0) + 2.0  # real s to be up again
    idle = timedelta(minutes=case.idle_minutes) if "idle" in case.phases else timedelta(0)
    warmup = WARMUP if "idle" in case.phases else timedelta(0)
    start = due - idle - warmup - timedelta(seconds=allowance * factor)
    epoch = time.time() + 0.5
    workers = start_workers(
        case, folder, config, run="running", start=start, factor=factor, epoch=epoch
    )
    try:
        await _measure(
            case, result, engine, progress, workers, due, tick, account_every, start, epoch
        )
    except BaseException:  # the caller stops them only on success: never leave one running
        stop_workers(workers)
        raise
    return workers


async def _measure(
    case: Case,
    result: Result,
    engine: Any,
    progress: PROGRESS,
    workers: list[Worker],
    due: datetime,
    tick: float,
    account_every: float,
    start: datetime,
    epoch: float,
) -> None:
    """The measured windows of run 2 (see :func:`running`), on workers already started."""
    factor = case.factor
    idle = timedelta(minutes=case.idle_minutes) if "idle" in case.phases else timedelta(0)

    def wall(when: datetime) -> float:
        return epoch + (when - start).total_seconds() / factor

    def sim(at: float) -> datetime:
        return start + timedelta(seconds=(at - epoch) * factor)

    async def sample() -> None:
        result.rss_mb_peak = peak_rss(workers, result.rss_mb_peak)

    def ticker(label: str, begin: float, end: float) -> Callable[[], Any]:
        async def tick_() -> None:
            await sample()
            now = time.time()
            progress(label, now - begin, end - begin, f"{sim(now):%H:%M} simulated")

        return tick_

    if "idle" in case.phases:
        begin_at, end_at = due - idle, due - timedelta(seconds=2 * tick)
        await wait_until(wall(begin_at), workers, ticker("warm-up", time.time(), wall(begin_at)))
        ready = max((w.ready_at() or time.time()) for w in workers)
        if ready > wall(begin_at):  # late: measure from when it was up
            begin_at = sim(ready) + timedelta(seconds=tick)
            await wait_until(wall(begin_at), workers)
    if "idle" in case.phases and begin_at >= end_at:
        result.idle = {"error": "the daemon was up only after the first posts fell due"}
    elif "idle" in case.phases:
        cpu0 = cpu_total(workers)
        await wait_until(wall(end_at), workers, ticker("idle", wall(begin_at), wall(end_at)))
        cpu1 = cpu_total(workers)
        hours = (end_at - begin_at).total_seconds() / 3600
        reads = await account_reads(engine, begin_at, end_at)
        expected = case.accounts * (end_at - begin_at).total_seconds() / account_every
        result.idle = {
            "simulated_minutes": round(hours * 60, 1),
            "cpu_s_per_sim_hour": round((cpu1 - cpu0) / hours, 2) if hours > 0 else None,
            "core_pct": round((cpu1 - cpu0) / hours / 36, 2) if hours > 0 else None,
            "saturation": round((cpu1 - cpu0) / (wall(end_at) - wall(begin_at)), 3),
            "follower_reads": reads,
            "follower_reads_expected": round(expected),
        }
    if "busy" in case.phases:
        end_at = due + timedelta(minutes=case.busy_minutes)
        await wait_until(wall(due), workers, ticker("waiting", time.time(), wall(due)))
        cpu0 = cpu_total(workers)
        await wait_until(wall(end_at), workers, ticker("busy", wall(due), wall(end_at)))
        cpu1 = cpu_total(workers)
        hours = case.busy_minutes / 60
        result.busy = {
            "simulated_minutes": case.busy_minutes,
            "cpu_s_per_sim_hour": round((cpu1 - cpu0) / hours, 2),
            "saturation": round((cpu1 - cpu0) / (wall(end_at) - wall(due)), 3),
            **await burst_figures(engine, due=due, until=end_at, factor=factor),
        }
    if "burst" in case.phases:
        await wait_until(wall(due), workers, ticker("waiting", time.time(), wall(due)))
        cpu0 = cpu_total(workers)
        deadline = wall(due) + case.burst_timeout
        figures: dict[str, Any] = {}
        while time.time() < deadline:
            check_alive(workers)
            await sample()
            figures = await lateness(engine, until=sim(time.time()), due_from=due - idle)
            done = figures["posts_published"]
            progress("burst", done, case.accounts, f"{done}/{case.accounts} published")
            if figures["posts_due"] and not figures["publish_backlog"]:
                break
            await asyncio.sleep(SAMPLE_EVERY)
        end_at = sim(time.time())
        cpu1 = cpu_total(workers)
        result.busy = {
            "simulated_minutes": round((end_at - due).total_seconds() / 60, 2),
            "cpu_s_per_sim_hour": round((cpu1 - cpu0) / ((end_at - due).total_seconds() / 3600), 2),
            "saturation": round((cpu1 - cpu0) / (time.time() - wall(due)), 3),
            **await burst_figures(engine, due=due, until=end_at, factor=factor),
        }
    await sample()


async def burst_figures(
    engine: Any, *, due: datetime, until: datetime, factor: float
) -> dict[str, Any]:
    """Lateness of everything due in the window, and the first posts' publishing rate."""
    figures = await lateness(engine, until=until, due_from=due - timedelta(days=1))
    burst = await lateness(engine, until=due, due_from=due - timedelta(days=1))
    figures.pop("last_published")
    last = burst.pop("last_published")  # of the burst's posts
    posted = await posted_by(engine, due=due, until=until)
    span = ((last or until) - due).total_seconds() / factor if posted else 0.0
    if burst["posts_due"] and posted < burst["posts_due"]:
        span = (until - due).total_seconds() / factor
    figures["burst_posts"] = burst["posts_due"]
    figures["burst_published"] = posted
    figures["burst_real_s"] = round(span, 2)
    figures["posts_per_real_min"] = round(60 * posted / span, 1) if span > 0 else None
    return figures


def note_logs(result: Result, workers: list[Worker]) -> None:
    """Count the log lines that say something went wrong or a tick was skipped."""
    problems: Counter[str] = Counter(result.log_problems)
    for worker in workers:
        for event in worker.events():
            name = event.get("event")
            if name in PROBLEM_EVENTS:
                problems[name] += 1
            elif name == "library_log" and "maximum number of running instances" in str(
                event.get("message")
            ):
                problems["ticks_skipped"] += 1
    result.log_problems = dict(problems)


async def double_work(result: Result, workers: list[Worker], folder: Path, engine: Any) -> None:
    published: Counter[Any] = Counter()
    taken: Counter[Any] = Counter()
    for worker in workers:
        for event in worker.events():
            if event.get("event") == "post_published":
                published[event.get("content_id")] += 1
            elif event.get("event") == "snapshot_taken":
                taken[event.get("snapshot_id")] += 1
    found: dict[str, Any] = {
        "posts_logged": len(published),
        "posts_published_twice": sum(n > 1 for n in published.values()),
        "snapshots_logged": len(taken),
        "snapshots_taken_twice": sum(n > 1 for n in taken.values()),
        **await store_double_work(engine),
    }
    keys = found.pop("keys")
    running_world = folder / world_file(result.case["factor"])
    world = world_posts(running_world) if result.case["world"] == "file" else None
    if world is not None:
        # one platform post per key, and each the post of a posted (or interrupted) row
        found["platform_posts"] = len(world)
        found["platform_posts_twice"] = len(world) - len(set(world))
        found["platform_posts_not_in_store"] = len(set(world) - keys)
        found["platform_matches_store"] = (
            not found["platform_posts_twice"] and not found["platform_posts_not_in_store"]
        )
    found["none"] = (
        not found["posts_published_twice"]
        and not found["snapshots_taken_twice"]
        and not found["snapshot_rows_doubled"]
        and found.get("platform_matches_store", True)
    )
    result.double_work = found


async def run_case(case: Case, folder: Path, progress: PROGRESS) -> Result:
    """Both runs of ``case`` in ``folder`` (a new, empty directory)."""
    from dataclasses import asdict

    result = Result(case=asdict(case))
    began = time.time()
    try:
        async with fresh_store(case.backend, folder), store_engine(case.backend, folder) as engine:
            await startup(case, folder, result, engine, progress)
            if not case.phases:  # start-up only
                result.wall_s = round(time.time() - began, 1)
                return result
            workers = await running(case, folder, result, engine, progress)
            try:
                codes = stop_workers(workers)
                if any(code != 0 for code in codes):
                    result.log_problems["unclean_exit"] = sum(c != 0 for c in codes)
            finally:
                note_logs(result, workers)
            await double_work(result, workers, folder, engine)
    except (WorkerDied, TimeoutError, OSError, sa.exc.SQLAlchemyError) as exc:
        result.ok, result.error = False, f"{type(exc).__name__}: {exc}"
    result.wall_s = round(time.time() - began, 1)
    return result
