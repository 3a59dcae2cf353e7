"""Write generated worlds (scenario files) for the learning benchmark.

    python -m bench.worlds --seed-set tune|report [--count N] [--kind all|drift|stationary]
                           [--out DIR]
    python -m bench.worlds --seed SEED            # one world's file on stdout

Each world is drawn from the distribution documented in :mod:`adapters.worlds` (and in
docs/learning.md, "Generated worlds") from one integer seed; the ``tune`` and ``report`` seed sets
are fixed and disjoint. Without ``--out`` the worlds are listed, one line each, and no file is
written. ``python -m bench.learning --worlds report`` generates and runs a suite in one command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.worlds import DEFAULT_COUNT, SEED_SETS, WORLD_KINDS, generate, write_worlds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed-set", choices=sorted(SEED_SETS), help="a fixed set of seeds")
    which.add_argument("--seed", type=int, help="one world: its file on stdout")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="the set's first N seeds")
    parser.add_argument(
        "--kind", choices=WORLD_KINDS, default="all", help="only drifting or stationary worlds"
    )
    parser.add_argument("--out", type=Path, help="directory for world_<seed>.yaml files")
    args = parser.parse_args(argv)
    if args.seed is not None:
        sys.stdout.write(generate(args.seed).text)
        return 0
    try:
        seeds = SEED_SETS[args.seed_set].seeds(args.count, args.kind)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out is not None:
        try:
            paths = write_worlds(seeds, args.out)
        except OSError as exc:
            print(f"error: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(paths)} worlds to {args.out}")
    for seed in seeds:
        print(f"{seed}: {generate(seed).summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
