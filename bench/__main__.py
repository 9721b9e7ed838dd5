"""Run benchmarks: `python -m bench` runs all (every bench/bench_<name>.py), `python -m bench NAME` some."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS = tuple(sorted(path.stem.removeprefix("bench_") for path in Path(__file__).parent.glob("bench_*.py")))


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"bench: unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        print(f"bench: {name} ...", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        module.run()


if __name__ == "__main__":
    main()
