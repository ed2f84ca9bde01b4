"""jaxirm against the released PyTorch loop: speed, agreement, scaling, memory and compile time.

Five sections, each printed as a table with every goal marked PASS or FAIL beside its number:

* ``single``: one IRM-TV-ℓ1 run on ``logit_z`` (the authors' setting: 5000 training examples, 10 features,
  full batch, Adam lr 0.02, l2 0.002, λ = 2000 after 2000 warm-up steps, train p_s (0.999, 0.7), label
  noise 0.1; 10 000 steps) with jaxirm (a jitted `jaxirm.run`, the `lax.scan` over ``solver.step``,
  compile reported on its own, and `jaxirm.fit` end to end) and with the PyTorch loop of
  `benchmarks.torch_reference`, on the same data. Goal: speedup ≥ 20×. Both final test accuracies (mean
  over the 4 test environments) must agree within 0.01, else the comparison is marked VOID (the initial
  draws differ between frameworks; if seed 0 disagrees, the mean over ``Sizes.accuracy_seeds`` seeds is
  compared instead, and the report says so).
* ``sweep``: 100 runs (10 seeds × 10 λ in logspace(10, 10⁴), one ``logit_z`` dataset per seed) as one
  `jaxirm.sweep` call against 100 sequential PyTorch runs. Goal: speedup ≥ 50×. ``--torch-sweep-runs K``
  times K of the PyTorch runs (spread over the grid) and extrapolates linearly to all runs, labelled as
  such; K = 100 measures them all. Also the floating-point rate of the sweep against the machine's own
  peak, measured in the same process with a large float32 matmul. Goal: ≥ 25% of peak.
* ``envs``: cost of the TV-ℓ1 penalty and its gradient at E = 2, 8, 64, 256 environments, n = 200 000
  (`benchmarks.env_scaling`'s objective), with the PyTorch per-environment loop (one ``autograd.grad`` per
  environment) beside it.
* ``datasize``: time of one IRM-TV-ℓ1 solver step (jitted) at n = 10³ … 10⁶ (E = 16, 10 features), which
  should grow linearly in n, and the peak resident memory of a fresh process per n. Goal: ≤ 1 GiB at
  n = 10⁶.
* ``compile``: compile time of the simulation run (jit of the 10 000-step `jaxirm.run`) and of the 100-run
  sweep, each in a fresh process without the persistent compilation cache. Goal: ≤ 5 s each.

FLOP count. The sweep's floating-point work is XLA's own count (``cost_analysis()["flops"]`` of one
compiled ``solver.step`` on one run's batch) × steps × runs. As a cross-check, the step of the linear model
on n examples with d features does two n×d matrix-vector products (forward Xw and backward Xᵀδ,
2nd FLOPs each) plus about 30 elementwise FLOPs per example (BCE, σ, the dummy-scale derivative
(σ(f) − y)·f and its derivative, the per-environment sums; exp and log1p counted once each) and O(d) for
L2 and Adam: ≈ 4nd + 30n = 350 000 FLOPs at n = 5000, d = 10. Such a step is memory- and latency-bound,
not compute-bound: it reads the data (n·d floats) twice for ~4nd FLOPs, an arithmetic intensity of
~0.5 FLOP/byte against the tens of FLOP/byte a CPU core needs to reach its matmul peak, and it runs as a
chain of ~30 small kernels (fusions) per step whose fixed per-kernel cost is comparable to their work.

Layout. Each section is a record in the table `benchmarks._sections.SECTIONS` (name, run function, title,
columns, notes); one formatter, `benchmarks._format.format_section`, prints them all, and `main` runs the
selected ones in order. The run functions live in `benchmarks._compare_training` (single, sweep) and
`benchmarks._compare_scaling` (envs, datasize, compile); sizes, goals and shared helpers in
`benchmarks._compare_setup`.

Method. Every compared pair is measured in one process, interleaved (each repeat runs every case once in a
freshly shuffled order), blocking on every result; the tables report medians over the repeats. PyTorch
runs eagerly with ``--torch-threads`` intra-op threads (default 1: on this dispatch-bound problem a second
thread does not help, and on a shared machine it can make PyTorch several times slower).

Run from the repository root::

    python -m benchmarks.compare                        # everything (about 15 minutes on 2 CPU cores)
    python -m benchmarks.compare --smoke                # tiny sizes, seconds; for CI
    python -m benchmarks.compare --only single sweep --torch-sweep-runs 100

The exit status is 0 whatever the goals say (this is a measurement, not a test); it is 1 only if a section
raised an error. PyTorch is optional (``pip install -e ".[bench]"``): without it the PyTorch columns are
left empty and the jaxirm parts still run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _timing
from benchmarks._compare_scaling import run_compile, run_datasize, run_envs
from benchmarks._compare_setup import FULL, GOALS, SMOKE, Sizes, analytic_step_flops, load_torch_reference
from benchmarks._compare_training import run_single, run_sweep
from benchmarks._format import format_section, goal_summary
from benchmarks._sections import SECTIONS

__all__ = [
    "SECTIONS",
    "GOALS",
    "Sizes",
    "FULL",
    "SMOKE",
    "analytic_step_flops",
    "run_single",
    "run_sweep",
    "run_envs",
    "run_datasize",
    "run_compile",
    "main",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compare.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _timed(runner: Callable[..., dict[str, Any]], *args: Any) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    result = runner(*args)
    return result, time.perf_counter() - start


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="jaxirm vs the released PyTorch loop: single run, sweep, environments, data size and "
        "compile time.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes for CI (seconds); never fails on slowness"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument(
        "--torch-sweep-runs",
        type=int,
        default=None,
        metavar="K",
        help=f"PyTorch runs timed for the sweep, extrapolated to all runs (default {FULL.torch_sweep_runs}; "
        "100 measures them all)",
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    parser.add_argument(
        "--no-torch", action="store_true", help="skip the PyTorch parts even if it is installed"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default 10000)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="interleaved repeats of the single-run cases"
    )
    parser.add_argument("--sweep-repeats", type=int, default=None, help="interleaved repeats of the sweep")
    parser.add_argument("--no-shared-sweep", action="store_true", help="skip the shared-data sweep variant")
    parser.add_argument("--seed", type=int, default=0, help="first data/init seed")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    overrides: dict[str, Any] = {}
    if args.torch_sweep_runs is not None:
        overrides["torch_sweep_runs"] = max(1, args.torch_sweep_runs)
    if args.steps is not None:
        overrides["steps"] = args.steps
        overrides["anneal_steps"] = min(sizes.anneal_steps, args.steps // 2)
    if args.repeats is not None:
        overrides["single_repeats"] = args.repeats
    if args.sweep_repeats is not None:
        overrides["sweep_repeats"] = args.sweep_repeats
    if args.no_shared_sweep:
        overrides["sweep_shared"] = False
    args.sizes = dataclasses.replace(sizes, **overrides)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the selected sections, prints one table per section and writes the JSON report.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      0, or 1 if a section raised an error (goals never change the exit status).
    """
    args = _parse_args(argv)
    sizes: Sizes = args.sizes
    tref, torch_note = (
        (None, "skipped (--no-torch)") if args.no_torch else load_torch_reference(args.torch_threads)
    )
    environment = _timing.environment_info()
    environment["torch"] = tref.torch_info() if tref is not None else None
    environment["torch_note"] = torch_note
    report: dict[str, Any] = {
        "benchmark": "compare",
        "config": {
            "smoke": bool(args.smoke),
            "sections": list(args.only),
            "seed": args.seed,
            "torch_threads": args.torch_threads if tref is not None else None,
            "sizes": dataclasses.asdict(sizes),
            "goals": GOALS,
            "timing": "medians over interleaved repeats (shuffled order per repeat), blocked until ready",
        },
        "environment": environment,
        "sections": {},
        "goals": [],
    }
    torch_desc = (
        "no PyTorch"
        if tref is None
        else f"torch {environment['torch']['torch_version']} ({args.torch_threads} thread(s))"
    )
    print(
        f"compare: jax {environment['jax_version']} on {environment['backend']} "
        f"({environment['device_kind']}), "
        f"{environment['usable_cpu_count']} usable CPUs, {torch_desc}{' [smoke]' if args.smoke else ''}",
        flush=True,
    )
    if torch_note:
        print(f"  note: {torch_note}", flush=True)
    sections = [s for name, s in SECTIONS.items() if name in args.only]
    # In smoke mode a section that only waits for its child processes (compile) starts at once in a
    # background thread, overlapping with the other sections (its timings then mean nothing; smoke only).
    background: dict[str, Future] = {}
    executor = None
    if args.smoke and any(s.background_in_smoke for s in sections):
        executor = ThreadPoolExecutor(max_workers=1)
        for s in sections:
            if s.background_in_smoke:
                background[s.name] = executor.submit(_timed, s.run, sizes, tref, args.seed)
        report["config"]["background_sections"] = list(background)
    errors = 0
    try:
        for section in sections:
            name = section.name
            try:
                if name in background:
                    result, seconds = background[name].result()
                else:
                    result, seconds = _timed(section.run, sizes, tref, args.seed)
            except Exception as err:  # one failed section must not lose the others
                errors += 1
                result, seconds = (
                    {
                        "error": f"{type(err).__name__}: {err}",
                        "traceback": traceback.format_exc(),
                        "goals": [],
                    },
                    None,
                )
                print(f"== {name}: ERROR {result['error']}\n{result['traceback']}", flush=True)
            else:
                print(format_section(section, result), flush=True)
            result["section_s"] = seconds
            report["sections"][name] = result
            report["goals"] += [dict(g, section=name) for g in result["goals"]]
            print(flush=True)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    print("\n".join(["== goals", *goal_summary(report["goals"])]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    print(f"wrote {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
