"""The ``jaxirm`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jaxirm`` / ``python -m jaxirm``.

    Args:
      argv: command-line arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
      The process exit status.
    """
    parser = argparse.ArgumentParser(prog="jaxirm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="print the IRM and IRM-TV-l1 penalties of two models on the simulation"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the simulated data (default 0)")
    demo.add_argument("--steps", type=int, default=2000, help="Adam steps of each fit (default 2000)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.steps < 1:
            parser.error("--steps must be >= 1")
        from jaxirm.demo import run_demo

        run_demo(seed=args.seed, steps=args.steps)
    return 0
