"""Run every benchmark (or those named on the command line) and print their result files."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "registry",
    "schema",
    "drift",
    "serving",
    "sideeffects",
    "runbooks",
    "widgets",
    "flavors",
    "gates",
    "replicas",
    "metrics",
]


def main() -> None:
    """Run the selected benchmarks in order."""
    names = [arg for arg in sys.argv[1:] if not arg.startswith("--")] or BENCHMARKS  # --quick: for the benchmarks
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        path = module.main()
        print(f"{name}: results in {path}")


if __name__ == "__main__":
    main()
