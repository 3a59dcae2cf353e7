"""One daemon process of the scale benchmark: ``growthloop run`` on a compressed clock.

    python -m bench.scale_worker --config FILE --start ISO-TIME --factor F --epoch UNIX-TIME
                                [--world-in-memory]

It builds the daemon as ``growthloop run`` does (agent/cli.py): the config file, the store
(``DATABASE_URL`` or the config's SQLite file, with its one-process lock), the agent graph from
:func:`agent.bootstrap.build` with the publish journal, and :class:`agent.daemon.Daemon` with its
signal handlers, running until SIGTERM. The one difference is the clock: an
:class:`agent.clock.ScaledClock` reading ``start`` at the Unix time ``epoch`` and running
``factor`` times faster than the wall clock, so several workers started with the same arguments
share one simulated time. ``bench/scale.py`` writes the config (its ``runtime.tick`` already
divided by the factor) and reads the JSON log this process writes on stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
from datetime import datetime
from pathlib import Path

# Where to write a cProfile dump of the whole process at exit (one file per worker; unset: no
# profiling). For finding where the daemon's CPU goes: `python -m pstats DIR/worker-PID.prof`.
PROFILE_ENV = "GROWTHLOOP_BENCH_PROFILE"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale_worker", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--start", type=datetime.fromisoformat, required=True)
    parser.add_argument("--factor", type=float, required=True)
    parser.add_argument("--epoch", type=float, required=True)
    parser.add_argument(
        "--world-in-memory",
        action="store_true",
        help="the sandbox world in this process only (as `growthloop simulate` keeps it), not "
        "in the config's sandbox.world_path; several workers need the shared file",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    from agent.bootstrap import build, store_url
    from agent.clock import ScaledClock
    from agent.config import load_config
    from agent.daemon import Daemon
    from agent.store.lockfile import lock_store

    config = load_config(args.config)
    clock = ScaledClock(start=args.start, factor=args.factor, epoch=args.epoch)
    url = store_url(config)
    lock = lock_store(url)  # SQLite: one daemon per file, as `growthloop run`
    try:
        built = await build(
            config,
            clock=clock,
            seed=None,
            store_wait=30.0,
            journal=True,
            world_in_memory=args.world_in_memory,
        )
        try:
            daemon = Daemon(
                built.agent,
                host="127.0.0.1",
                port=0,  # any free port: several workers run side by side
                store_url=url,
                config_path=args.config,
                environ=os.environ,
            )
            return await daemon.run()
        finally:
            await built.aclose()
    finally:
        if lock is not None:
            lock.release()


def main(argv: list[str] | None = None) -> None:
    from click.exceptions import Exit

    from agent.cli_support import guarded
    from agent.logs import configure_logging

    args = parse(argv)
    configure_logging()
    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_dir else None
    if profiler is not None:
        profiler.enable()
    try:
        code = guarded(lambda: serve(args))
    except Exit as exc:  # a user-fixable error, already printed as one paragraph
        code = exc.exit_code
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(Path(profile_dir) / f"worker-{os.getpid()}.prof")
    sys.exit(code)


if __name__ == "__main__":
    main()
