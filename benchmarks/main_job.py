"""Where the main job's time goes: each method's sweep of ``jaxirm reproduce``, compiled and run alone.

For every method of an experiment (default ``simulation``, the README's main job) this builds the sweep
exactly as `jaxirm.experiments.reproduce` does (`jaxirm.experiments._run.prepare_method`: the seeds' data,
the registered hyperparameters, one CPU device per core as the ``jaxirm`` command sets), compiles it without
any compilation cache (trace + lowering and XLA's backend compile reported apart), then times its runs
interleaved with the other methods' (``--repeats`` each, a fresh random order per repeat) and prints::

    method | trace+lower s | backend s | run s (median) | min | max | µs per run-step

The totals line is what a cold main job must do (every compile, every run once); the warm job loads the
programs instead of compiling them, so its training is the sum of the run column. Methods of one game
(``tv_norm`` 1 and 2, one solver) share one program, compiled once, as in ``reproduce``. Compare rows of one
output, never numbers across runs: the machines are shared.

Usage::

    python -m benchmarks.main_job                       # simulation, all methods, 3 repeats
    python -m benchmarks.main_job --only ZIN TIVA LfF --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence

__all__ = ["main", "measure"]


def measure(experiment: str, methods: Sequence[str] | None, repeats: int) -> list[dict]:
    """Compiles and times each method's sweep (see the module docstring).

    Args:
      experiment: a registered experiment name.
      methods: method names (None: all of the experiment's).
      repeats: timed runs per method (≥ 1), interleaved across methods.

    Returns:
      One dict per method: ``method``, ``trace_s`` (trace + lowering), ``backend_s``, ``runs_s`` (the
      ``repeats`` durations), ``run_steps`` (runs × steps).
    """
    import jax

    from benchmarks import _timing
    from jaxirm._sweep import _program_jit
    from jaxirm.experiments._plan import plan
    from jaxirm.experiments._run import prepare_method

    with tempfile.TemporaryDirectory() as out:
        run = plan(experiment, out=out, methods=methods, progress=False, plot=False)
        data = run.data()
        seeds = range(run.seeds)
        rows, cases, programs = [], {}, {}
        for method in run.methods:
            sweep = prepare_method(run, method.name, data, seeds)
            solver = run.solvers[method.name]
            times = {"trace_s": 0.0, "lower_s": 0.0, "backend_s": 0.0}
            if solver in programs:  # a method of the same game (the norm is data): its program, as reproduce
                program, shared = programs[solver]
            else:
                with _timing.compile_timer() as times:
                    program = _program_jit.lower(*sweep.args, **sweep.static).compile()
                programs[solver], shared = (program, method.name), ""
            jax.block_until_ready(program(*sweep.args))  # first run: page faults, thread start-up
            rows.append(
                {
                    "method": method.name + (f" ({shared}'s program)" if shared else ""),
                    "trace_s": times["trace_s"] + times["lower_s"],
                    "backend_s": times["backend_s"],
                    "run_steps": len(seeds) * run.steps,
                }
            )
            cases[rows[-1]["method"]] = lambda p=program, a=sweep.args: jax.block_until_ready(p(*a))
        durations = _timing.interleaved_times(cases, repeats)
    for row in rows:
        row["runs_s"] = durations[row["method"]]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiment", default="simulation", help="a registered experiment (default: simulation)"
    )
    parser.add_argument("--only", nargs="+", help="method names (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (default: 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    from jaxirm.cli import _configure_jax

    _configure_jax(compile_cache=False)  # one CPU device per core, as `jaxirm reproduce`; no cache
    from benchmarks import _timing

    rows = measure(args.experiment, args.only, args.repeats)
    table = []
    for r in rows:
        med = statistics.median(r["runs_s"])
        table.append(
            [
                r["method"],
                r["trace_s"],
                r["backend_s"],
                med,
                min(r["runs_s"]),
                max(r["runs_s"]),
                1e6 * med / r["run_steps"],
            ]
        )
    total = [sum(col) for col in zip(*[t[1:4] for t in table], strict=True)]
    table.append(["total", *total, "", "", ""])
    import jax

    print(
        f"{args.experiment}: {len(rows)} methods, {jax.device_count()} devices, {args.repeats} repeats, "
        f"pid {os.getpid()}"
    )
    print(
        _timing.format_table(
            ["method", "trace+lower s", "backend s", "run s", "min", "max", "µs/run-step"], table
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
