"""jaxirm against the released PyTorch loop: speed, agreement, scaling, memory and compile time.

Five sections, each printed as a table with every goal marked PASS or FAIL beside its number:

* ``single``: one IRM-TV-ℓ1 run on ``logit_z`` (the authors' setting: 5000 training examples, 10 features,
  full batch, Adam lr 0.02, l2 0.002, λ = 2000 after 2000 warm-up steps, train p_s (0.999, 0.7), label
  noise 0.1; 10 000 steps) with jaxirm (a jitted `lax.scan` over ``solver.step``, compile reported on its
  own, and `jaxirm.fit` end to end) and with the PyTorch loop of `benchmarks.torch_reference`, on the same
  data. Goal: speedup ≥ 20×. Both final test accuracies (mean over the 4 test environments) must agree
  within 0.01, else the comparison is marked VOID (the initial draws differ between frameworks; if seed 0
  disagrees, the mean over ``--accuracy-seeds`` seeds is compared instead, and the report says so).
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
* ``compile``: compile time of the simulation run (jit of the 10 000-step scan) and of the 100-run sweep,
  each in a fresh process without the persistent compilation cache. Goal: ≤ 5 s each.

FLOP count. The sweep's floating-point work is XLA's own count (``cost_analysis()["flops"]`` of one
compiled ``solver.step`` on one run's batch) × steps × runs. As a cross-check, the step of the linear model
on n examples with d features does two n×d matrix-vector products (forward Xw and backward Xᵀδ,
2nd FLOPs each) plus about 30 elementwise FLOPs per example (BCE, σ, the dummy-scale derivative
(σ(f) − y)·f and its derivative, the per-environment sums; exp and log1p counted once each) and O(d) for
L2 and Adam: ≈ 4nd + 30n = 350 000 FLOPs at n = 5000, d = 10. Such a step is memory- and latency-bound,
not compute-bound: it reads the data (n·d floats) twice for ~4nd FLOPs, an arithmetic intensity of
~0.5 FLOP/byte against the tens of FLOP/byte a CPU core needs to reach its matmul peak, and it runs as a
chain of ~30 small kernels (fusions) per step whose fixed per-kernel cost is comparable to their work.

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
import contextlib
import dataclasses
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

import jaxirm
from benchmarks import _timing, env_scaling
from benchmarks._compare_child import COMPILE_EVENTS
from jaxirm.datasets import logit_z
from jaxirm.models import MLP
from jaxirm.solvers import Batch, Solver, SolverState, irm

__all__ = [
    "SECTIONS",
    "GOALS",
    "Sizes",
    "FULL",
    "SMOKE",
    "run_single",
    "run_sweep",
    "run_envs",
    "run_datasize",
    "run_compile",
    "main",
]

SECTIONS = ("single", "sweep", "envs", "datasize", "compile")
#: Goal thresholds.
GOALS = {
    "single_speedup": 20.0,
    "sweep_speedup": 50.0,
    "sweep_peak_percent": 25.0,
    "accuracy_tol": 0.01,
    "datasize_peak_mb": 1024.0,
    "datasize_exponent": 1.2,
    "envs_ratio": env_scaling.THRESHOLD,
    "compile_s": 5.0,
}
#: The authors' IRM-TV-ℓ1 setting for ``logit_z`` (REFERENCE.md section 1.2).
AUTHORS_HPARAMS = {"lr": 0.02, "l2": 0.002, "lam": 2000.0, "anneal_steps": 2000}
DATA = {"p_s_train": (0.999, 0.7), "noise_ratio": 0.1}
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compare.json"
TORCH_HINT = 'pip install -e ".[bench]" (in the jaxirm clone)'


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes and repeat counts of one benchmark run.

    Attributes:
      n_train: training examples of ``logit_z`` (single, sweep, compile).
      n_test: test examples.
      steps: training steps per run.
      anneal_steps: warm-up steps with the penalty off.
      single_repeats: interleaved repeats of the single-run cases.
      accuracy_seeds: seeds averaged when seed 0's accuracies disagree.
      sweep_seeds: seeds of the sweep.
      sweep_lams: λ values of the sweep (logspace(1, 4)).
      sweep_repeats: interleaved repeats of the sweep cases.
      torch_sweep_runs: PyTorch runs timed for the sweep (extrapolated to all runs).
      sweep_shared: also time the sweep on one shared dataset.
      peak_size: side of the float32 matmul that measures the peak FLOP rate.
      peak_repeats: timed repeats of that matmul.
      envs_n: examples in the environment-scaling section.
      envs_num_envs: environment counts.
      envs_repeats: interleaved repeats there.
      envs_naive: also time the naive JAX formulation (vmap of one grad per environment).
      datasize_n: example counts of the data-size section.
      datasize_envs: environment labels there.
      datasize_steps: steps per timed call there (the step time is the call time / steps).
      datasize_repeats: interleaved repeats there.
      datasize_memory: measure the peak memory in a fresh process for ``"all"`` n, the ``"largest"`` only,
        or ``"none"``.
      compile_sweep_steps: steps of the sweep whose compile time is measured in a fresh process.
      compile_fresh_each: one fresh process per compile measurement (else one process for both, the
        second then sharing the first's warm caches: only for the smoke run).
    """

    n_train: int = 5000
    n_test: int = 5000
    steps: int = 10_000
    anneal_steps: int = 2000
    single_repeats: int = 3
    accuracy_seeds: int = 3
    sweep_seeds: int = 10
    sweep_lams: int = 10
    sweep_repeats: int = 2
    torch_sweep_runs: int = 10
    sweep_shared: bool = True
    peak_size: int = 4096
    peak_repeats: int = 5
    envs_n: int = 200_000
    envs_num_envs: tuple[int, ...] = (2, 8, 64, 256)
    envs_repeats: int = 5
    envs_naive: bool = True
    datasize_n: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    datasize_envs: int = 16
    datasize_steps: int = 20
    datasize_repeats: int = 5
    datasize_memory: str = "all"
    compile_sweep_steps: int = 1000
    compile_fresh_each: bool = True


FULL = Sizes()
SMOKE = Sizes(
    n_train=400,
    n_test=400,
    steps=200,
    anneal_steps=100,
    single_repeats=1,
    accuracy_seeds=1,
    sweep_seeds=2,
    sweep_lams=2,
    sweep_repeats=1,
    torch_sweep_runs=2,
    sweep_shared=False,
    peak_size=256,
    peak_repeats=2,
    envs_n=2000,
    envs_num_envs=(2, 8),
    envs_repeats=2,
    envs_naive=False,
    datasize_n=(1000, 10_000),
    datasize_steps=2,
    datasize_repeats=2,
    datasize_memory="largest",
    compile_sweep_steps=10,
    compile_fresh_each=False,
)


# ----------------------------------------------------------------------------------------------------------
# Helpers.


@contextlib.contextmanager
def compile_timer() -> Iterator[dict[str, float]]:
    """Sums jax's compile duration events (trace, MLIR lowering, XLA compile) while the block runs.

    Yields:
      A dict that holds, once the block exits, ``trace_s``, ``lower_s``, ``backend_s`` and ``total_s``.
    """
    events = dict.fromkeys(COMPILE_EVENTS, 0.0)

    def listener(event: str, duration: float, **_: Any) -> None:
        if event in events:
            events[event] += duration

    out: dict[str, float] = {}
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield out
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
        trace, lower, backend = (events[e] for e in COMPILE_EVENTS)
        out.update(trace_s=trace, lower_s=lower, backend_s=backend, total_s=trace + lower + backend)


def make_solver(num_envs: int | None, hparams: dict[str, float]) -> Solver:
    """The IRM-TV-ℓ1 solver of the comparison: linear model (`MLP` without hidden layers), Adam.

    ``measure="empirical"`` weights the environments by their size, exactly what the released loop's
    masked means over all N examples compute (with equal-sized environments it equals the uniform measure).

    Args:
      num_envs: number of environment labels.
      hparams: ``lr``, ``l2``, ``lam``, ``anneal_steps``.

    Returns:
      The `Solver`.
    """
    return irm(MLP(), penalty="tv_l1", num_envs=num_envs, measure="empirical", **hparams)


def scan_steps(solver: Solver, num_steps: int) -> Callable[[SolverState, Batch], SolverState]:
    """``run(state, batch)``: ``num_steps`` solver steps in one `lax.scan`, returning the final state.

    Args:
      solver: a `Solver`.
      num_steps: the scan length.

    Returns:
      The (unjitted) function.
    """

    def run(state: SolverState, batch: Batch) -> SolverState:
        def body(s, _):
            return solver.step(s, batch)[0], None

        return jax.lax.scan(body, state, None, length=num_steps)[0]

    return run


def _hparams(sizes: Sizes, lam: float | None = None) -> dict[str, float]:
    hp = dict(AUTHORS_HPARAMS, anneal_steps=sizes.anneal_steps)
    if lam is not None:
        hp["lam"] = float(lam)
    return hp


def _batch(data: Any) -> Batch:
    return Batch(np.asarray(data.x), np.asarray(data.y), np.asarray(data.envs))


def _device_batch(data: Any) -> Batch:
    return Batch(*(jax.device_put(np.asarray(a)) for a in (data.x, data.y, data.envs)))


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def goal(name: str, value: float | None, op: str, threshold: float, unit: str = "") -> dict[str, Any]:
    """A goal and whether the measured value meets it.

    Args:
      name: what is measured.
      value: the measurement (None: not measured, e.g. without PyTorch or for a VOID comparison).
      op: ``">="`` or ``"<="``.
      threshold: the goal.
      unit: printed after the numbers.

    Returns:
      ``{"name", "value", "op", "threshold", "unit", "passed"}``; ``passed`` is None when ``value`` is None.
    """
    passed = None
    if value is not None:
        passed = bool(value >= threshold) if op == ">=" else bool(value <= threshold)
    return {"name": name, "value": value, "op": op, "threshold": threshold, "unit": unit, "passed": passed}


def _verdict(g: dict[str, Any]) -> str:
    return "n/a" if g["passed"] is None else ("PASS" if g["passed"] else "FAIL")


def _format_goals(goals: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for g in goals:
        value = "n/a" if g["value"] is None else f"{g['value']:.3g}{g['unit']}"
        lines.append(
            f"  goal: {g['name']} = {value} ({g['op']} {g['threshold']:g}{g['unit']}): {_verdict(g)}"
        )
    return lines


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _run_child(spec: dict[str, Any] | list[dict[str, Any]], timeout: float = 900.0) -> Any:
    """Runs `benchmarks._compare_child` in a fresh interpreter and returns its JSON result.

    Args:
      spec: one measurement (``{"kind": ..., **kwargs}``) or a list of them, run in one process.
      timeout: seconds before the child is killed.

    Returns:
      The child's result (a dict, or a list for a list spec), or ``{"error": message}`` if it failed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._compare_child", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"child exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


def matmul_peak(size: int, repeats: int) -> dict[str, float]:
    """The machine's float32 matmul rate, measured now: a jitted ``size``×``size`` matmul, median of repeats.

    Args:
      size: matrix side.
      repeats: timed runs (after one warm-up).

    Returns:
      ``{"size", "median_s", "gflops"}``.
    """
    rng = np.random.default_rng(0)
    a = jax.device_put(rng.standard_normal((size, size), dtype=np.float32))
    b = jax.device_put(rng.standard_normal((size, size), dtype=np.float32))
    case = _timing.compile_case(jnp.matmul, a, b)
    median_s = _median(_timing.interleaved_times({"mm": case}, repeats)["mm"])
    return {"size": size, "median_s": median_s, "gflops": 2.0 * size**3 / median_s / 1e9}


def step_flops(solver: Solver, state: SolverState, batch: Batch) -> float | None:
    """XLA's FLOP count of one compiled solver step (``cost_analysis()["flops"]``), or None if unavailable.

    Args:
      solver: the `Solver`.
      state: a state of one run.
      batch: one run's batch.

    Returns:
      FLOPs per step.
    """
    analysis = jax.jit(solver.step).lower(state, batch).compile().cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return None if flops is None or flops <= 0 else float(flops)


def analytic_step_flops(n: int, d: int) -> float:
    """The cross-check count of one IRM-TV-ℓ1 step of the linear model: 4nd + 30n (see the module doc).

    Args:
      n: examples.
      d: features.

    Returns:
      FLOPs per step.
    """
    return 4.0 * n * d + 30.0 * n


# ----------------------------------------------------------------------------------------------------------
# single


def run_single(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """One IRM-TV-ℓ1 run on ``logit_z``: jaxirm scan and fit against the PyTorch loop, interleaved.

    Args:
      sizes: problem sizes.
      tref: the `benchmarks.torch_reference` module, or None without PyTorch.
      seed: data and init seed of the timed run.

    Returns:
      The section's JSON-serialisable results.
    """
    hp = _hparams(sizes)
    train, test = logit_z(seed, n_train=sizes.n_train, n_test=sizes.n_test, **DATA)
    solver = make_solver(train.num_envs, hp)
    batch = _device_batch(train)
    state = solver.init(jax.random.key(seed), batch)
    scan = _timing.compile_case(scan_steps(solver, sizes.steps), state, batch)

    fit_calls: list[dict[str, float]] = []
    torch_calls: list[dict[str, Any]] = []

    def fit_once(s: int = seed, record: bool = True) -> float:
        tr, te = (
            (train, test) if s == seed else logit_z(s, n_train=sizes.n_train, n_test=sizes.n_test, **DATA)
        )
        with compile_timer() as ct:
            start = time.perf_counter()
            res = jaxirm.fit(
                solver,
                jax.random.key(s),
                _batch(tr),
                sizes.steps,
                test=_batch(te),
                eval_every=sizes.steps,
                progress=False,
            )
            wall = time.perf_counter() - start
        acc = float(res.selection["final"]["test_mean"])
        if record:
            fit_calls.append({"wall_s": wall, "compile_s": ct["total_s"], "test_mean": acc})
        return acc

    def torch_once(s: int = seed, record: bool = True) -> float:
        tr, te = (
            (train, test) if s == seed else logit_z(s, n_train=sizes.n_train, n_test=sizes.n_test, **DATA)
        )
        out = tref.train_irm_tv_l1(
            tr.x, tr.y, tr.envs, num_steps=sizes.steps, seed=s, test=(te.x, te.y, te.envs), **hp
        )
        if record:
            torch_calls.append(out)
        return out["test_mean"]

    cases: dict[str, Callable[[], Any]] = {"jaxirm scan": scan, "jaxirm.fit": fit_once}
    if tref is not None:
        cases["torch"] = torch_once
    times = _timing.interleaved_times(cases, sizes.single_repeats, seed=seed)

    scan_run = _median(times["jaxirm scan"])
    fit_wall = _median([c["wall_s"] for c in fit_calls])
    fit_compile = _median([c["compile_s"] for c in fit_calls])
    fit_run = _median([c["wall_s"] - c["compile_s"] for c in fit_calls])
    per_step = 1e3 / sizes.steps
    jax_acc = fit_calls[-1]["test_mean"]
    rows: list[dict[str, Any]] = []
    torch_run = None
    agreement: dict[str, Any] = {"status": "n/a (no PyTorch)"}
    if tref is not None:
        torch_run = _median([c["train_s"] for c in torch_calls])
        torch_acc = torch_calls[-1]["test_mean"]
        diff = abs(jax_acc - torch_acc)
        basis = f"seed {seed}"
        per_seed = [{"seed": seed, "jaxirm": jax_acc, "torch": torch_acc}]
        if diff > GOALS["accuracy_tol"] and sizes.accuracy_seeds > 1:
            for s in range(seed + 1, seed + sizes.accuracy_seeds):
                per_seed.append({"seed": s, "jaxirm": fit_once(s, False), "torch": torch_once(s, False)})
            jax_acc = float(np.mean([p["jaxirm"] for p in per_seed]))
            torch_acc = float(np.mean([p["torch"] for p in per_seed]))
            diff = abs(jax_acc - torch_acc)
            basis = f"mean over {len(per_seed)} seeds (seed {seed} alone differed by more than the tolerance)"
        agreement = {
            "status": "OK" if diff <= GOALS["accuracy_tol"] else "VOID",
            "basis": basis,
            "jaxirm_test_mean": jax_acc,
            "torch_test_mean": torch_acc,
            "abs_diff": diff,
            "tolerance": GOALS["accuracy_tol"],
            "per_seed": per_seed,
        }
        rows.append(
            {
                "implementation": f"torch eager loop ({tref.torch_info()['torch_num_threads']} thread(s))",
                "run_s": torch_run,
                "step_ms": torch_run * per_step,
                "compile_s": None,
                "speedup": 1.0,
                "test_mean": torch_calls[-1]["test_mean"],
            }
        )
    void = agreement["status"] == "VOID"

    def speedup(jax_s: float) -> float | None:
        return None if torch_run is None else torch_run / jax_s

    rows += [
        {
            "implementation": "jaxirm scan, excl. compile",
            "run_s": scan_run,
            "step_ms": scan_run * per_step,
            "compile_s": scan.compile_s,
            "speedup": speedup(scan_run),
            "test_mean": None,
        },
        {
            "implementation": "jaxirm scan, incl. compile",
            "run_s": scan_run + scan.compile_s,
            "step_ms": (scan_run + scan.compile_s) * per_step,
            "compile_s": scan.compile_s,
            "speedup": speedup(scan_run + scan.compile_s),
            "test_mean": None,
        },
        {
            "implementation": "jaxirm.fit, excl. compile",
            "run_s": fit_run,
            "step_ms": fit_run * per_step,
            "compile_s": fit_compile,
            "speedup": speedup(fit_run),
            "test_mean": fit_calls[-1]["test_mean"],
        },
        {
            "implementation": "jaxirm.fit end to end",
            "run_s": fit_wall,
            "step_ms": fit_wall * per_step,
            "compile_s": fit_compile,
            "speedup": speedup(fit_wall),
            "test_mean": fit_calls[-1]["test_mean"],
        },
    ]
    headline = None if void else speedup(scan_run)
    goals = [
        goal("speedup, jaxirm scan vs torch (excl. compile)", headline, ">=", GOALS["single_speedup"], "x"),
        goal(
            "speedup, jaxirm scan vs torch (incl. compile)",
            None if void else speedup(scan_run + scan.compile_s),
            ">=",
            GOALS["single_speedup"],
            "x",
        ),
    ]
    return {
        "config": {
            "seed": seed,
            "n_train": sizes.n_train,
            "n_test": sizes.n_test,
            "steps": sizes.steps,
            "hparams": hp,
            "data": {k: list(v) if isinstance(v, tuple) else v for k, v in DATA.items()},
            "repeats": sizes.single_repeats,
            "evaluation": "test accuracy after the last step only, in both frameworks",
        },
        "rows": rows,
        "agreement": agreement,
        "void": void,
        "times_s": {k: list(v) for k, v in times.items()},
        "fit_calls": fit_calls,
        "goals": goals,
    }


def format_single(result: dict[str, Any]) -> str:
    """The ``single`` section as a table with its goals.

    Args:
      result: `run_single`'s output.

    Returns:
      Printable text.
    """
    cfg = result["config"]
    header = ["implementation", "per-run s", "per-step ms", "compile s", "speedup", "final test acc"]
    rows = [
        [
            r["implementation"],
            r["run_s"],
            round(r["step_ms"], 4),
            _fmt(r["compile_s"]),
            _fmt(r["speedup"], ".1f"),
            _fmt(r["test_mean"], ".4f"),
        ]
        for r in result["rows"]
    ]
    agr = result["agreement"]
    lines = [
        f"== single: IRM-TV-l1 on logit_z, n_train = {cfg['n_train']}, {cfg['steps']} steps, "
        f"median of {cfg['repeats']} interleaved repeats",
        _timing.format_table(header, rows),
    ]
    if "abs_diff" in agr:
        lines.append(
            f"  accuracy agreement ({agr['basis']}): jaxirm {agr['jaxirm_test_mean']:.4f} vs torch "
            f"{agr['torch_test_mean']:.4f}, |diff| = {agr['abs_diff']:.4f} (tolerance {agr['tolerance']}): "
            f"{agr['status']}"
        )
    else:
        lines.append(f"  accuracy agreement: {agr['status']}")
    if result["void"]:
        lines.append("  VOID: the accuracies disagree, so the speedups are not reported as goals")
    return "\n".join(lines + _format_goals(result["goals"]))


# ----------------------------------------------------------------------------------------------------------
# sweep


def run_sweep(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """Seeds × λ runs as one `jaxirm.sweep` call against sequential PyTorch runs, interleaved.

    Args:
      sizes: problem sizes.
      tref: the `benchmarks.torch_reference` module, or None without PyTorch.
      seed: first seed.

    Returns:
      The section's JSON-serialisable results.
    """
    seeds = list(range(seed, seed + sizes.sweep_seeds))
    lams = np.logspace(1, 4, sizes.sweep_lams)
    hp = _hparams(sizes)
    solver = make_solver(2, hp)
    parts = [logit_z(s, n_train=sizes.n_train, n_test=sizes.n_test, **DATA) for s in seeds]

    def stack(split: int) -> Batch:
        fields = ("x", "y", "envs")
        return Batch(*[np.stack([getattr(p[split], f) for p in parts]) for f in fields])

    train_stack, test_stack = stack(0), stack(1)
    configs = [(s, float(lam)) for s in seeds for lam in lams]  # jaxirm.sweep's order: seed-major
    num_runs = len(configs)

    calls: dict[str, list[dict[str, Any]]] = {"per-seed data": [], "shared data": []}
    results: dict[str, Any] = {}

    def jax_sweep(kind: str) -> None:
        per_seed = kind == "per-seed data"
        train = train_stack if per_seed else _batch(parts[0][0])
        test = test_stack if per_seed else _batch(parts[0][1])
        with compile_timer() as ct:
            start = time.perf_counter()
            res = jaxirm.sweep(
                solver,
                train,
                sizes.steps,
                seeds=seeds,
                grid={"lam": lams},
                test=test,
                eval_every=sizes.steps,
                data_per_seed=per_seed,
            )
            wall = time.perf_counter() - start
        calls[kind].append({"wall_s": wall, "compile_s": ct["total_s"], "run_s": wall - ct["total_s"]})
        results[kind] = res

    torch_idx: list[int] = []
    torch_runs: list[dict[str, Any]] = []
    if tref is not None:
        k = max(1, min(sizes.torch_sweep_runs, num_runs))
        torch_idx = sorted({int(round(i)) for i in np.linspace(0, num_runs - 1, k)})

    def torch_block(indices: Sequence[int]) -> None:
        for i in indices:
            s, lam = configs[i]
            tr, te = parts[s - seed]
            out = tref.train_irm_tv_l1(
                tr.x,
                tr.y,
                tr.envs,
                num_steps=sizes.steps,
                seed=s,
                test=(te.x, te.y, te.envs),
                **dict(hp, lam=lam),
            )
            torch_runs.append(
                {"index": i, "seed": s, "lam": lam, "train_s": out["train_s"], "test_mean": out["test_mean"]}
            )

    kinds = ["per-seed data"] + (["shared data"] if sizes.sweep_shared else [])
    blocks = [list(b) for b in np.array_split(np.asarray(torch_idx, int), sizes.sweep_repeats)]
    rng = random.Random(seed)
    for r in range(sizes.sweep_repeats):
        tasks: list[tuple[str, Any]] = [("jax", k) for k in kinds]
        if tref is not None and blocks[r]:
            tasks.append(("torch", blocks[r]))
        rng.shuffle(tasks)
        for what, arg in tasks:
            if what == "jax":
                jax_sweep(arg)
            else:
                torch_block(arg)

    # Floating-point rate against the machine's matmul peak, measured now.
    one = Batch(*(None if a is None else jnp.asarray(a[0]) for a in train_stack))
    flops = step_flops(solver, solver.init(jax.random.key(0), one), one)
    analytic = analytic_step_flops(sizes.n_train, train_stack.x.shape[-1])
    peak = matmul_peak(sizes.peak_size, sizes.peak_repeats)

    rows: list[dict[str, Any]] = []
    torch_total = None
    extrapolated = False
    if torch_runs:
        per_run = [t["train_s"] for t in torch_runs]
        extrapolated = len(torch_runs) < num_runs
        torch_total = float(np.mean(per_run)) * num_runs
        label = f"extrapolated from {len(torch_runs)} runs" if extrapolated else "measured"
        rows.append(
            {
                "implementation": f"torch, {num_runs} sequential runs ({label})",
                "total_s": torch_total,
                "run_step_us": 1e6 * torch_total / (num_runs * sizes.steps),
                "compile_s": None,
                "speedup": 1.0,
            }
        )
    summary: dict[str, dict[str, float]] = {}
    for kind in kinds:
        run_s = _median([c["run_s"] for c in calls[kind]])
        compile_s = _median([c["compile_s"] for c in calls[kind]])
        summary[kind] = {
            "run_s": run_s,
            "compile_s": compile_s,
            "wall_s": _median([c["wall_s"] for c in calls[kind]]),
        }
        for label, total in (("excl. compile", run_s), ("incl. compile", run_s + compile_s)):
            rows.append(
                {
                    "implementation": f"jaxirm.sweep, {kind}, {label}",
                    "total_s": total,
                    "run_step_us": 1e6 * total / (num_runs * sizes.steps),
                    "compile_s": compile_s,
                    "speedup": None if torch_total is None else torch_total / total,
                }
            )

    # Agreement on the runs PyTorch trained: the same configurations in both frameworks.
    agreement: dict[str, Any] = {"status": "n/a (no PyTorch)"}
    if torch_runs:
        final = np.asarray(results["per-seed data"].selection["final"]["test_mean"])
        jax_accs = [float(final[t["index"]]) for t in torch_runs]
        torch_accs = [t["test_mean"] for t in torch_runs]
        diff = abs(float(np.mean(jax_accs)) - float(np.mean(torch_accs)))
        agreement = {
            "status": "OK" if diff <= GOALS["accuracy_tol"] else "VOID",
            "basis": f"mean over the {len(torch_runs)} configurations PyTorch trained",
            "jaxirm_test_mean": float(np.mean(jax_accs)),
            "torch_test_mean": float(np.mean(torch_accs)),
            "abs_diff": diff,
            "max_abs_diff_per_run": float(np.max(np.abs(np.subtract(jax_accs, torch_accs)))),
            "tolerance": GOALS["accuracy_tol"],
        }
    void = agreement["status"] == "VOID"
    head = summary["per-seed data"]
    rate = None if flops is None else num_runs * sizes.steps * flops / head["run_s"] / 1e9
    percent = None if rate is None else 100.0 * rate / peak["gflops"]
    goals = [
        goal(
            "speedup, jaxirm.sweep (per-seed data, excl. compile) vs torch",
            None if void or torch_total is None else torch_total / head["run_s"],
            ">=",
            GOALS["sweep_speedup"],
            "x",
        ),
        goal(
            "speedup, jaxirm.sweep (per-seed data, incl. compile) vs torch",
            None if void or torch_total is None else torch_total / (head["run_s"] + head["compile_s"]),
            ">=",
            GOALS["sweep_speedup"],
            "x",
        ),
        goal("jaxirm.sweep FLOP rate, % of matmul peak", percent, ">=", GOALS["sweep_peak_percent"], "%"),
    ]
    return {
        "config": {
            "seeds": seeds,
            "lams": [float(v) for v in lams],
            "runs": num_runs,
            "steps": sizes.steps,
            "n_train": sizes.n_train,
            "hparams": hp,
            "repeats": sizes.sweep_repeats,
            "torch_runs_timed": len(torch_runs),
            "torch_extrapolated": extrapolated,
        },
        "rows": rows,
        "jaxirm": summary,
        "jaxirm_calls": calls,
        "torch_runs": torch_runs,
        "agreement": agreement,
        "void": void,
        "flops": {
            "per_run_step_xla": flops,
            "per_run_step_analytic": analytic,
            "total": None if flops is None else num_runs * sizes.steps * flops,
            "achieved_gflops": rate,
            "peak": peak,
            "percent_of_peak": percent,
        },
        "goals": goals,
    }


def format_sweep(result: dict[str, Any]) -> str:
    """The ``sweep`` section as a table with its goals.

    Args:
      result: `run_sweep`'s output.

    Returns:
      Printable text.
    """
    cfg = result["config"]
    header = ["implementation", "total s", "per run-step us", "compile s", "speedup"]
    rows = [
        [
            r["implementation"],
            r["total_s"],
            round(r["run_step_us"], 2),
            _fmt(r["compile_s"]),
            _fmt(r["speedup"], ".1f"),
        ]
        for r in result["rows"]
    ]
    fl = result["flops"]
    lines = [
        f"== sweep: {cfg['runs']} runs ({len(cfg['seeds'])} seeds x {len(cfg['lams'])} lam in "
        f"[{cfg['lams'][0]:g}, {cfg['lams'][-1]:g}]), {cfg['steps']} steps each, median of {cfg['repeats']} "
        "interleaved repeats",
        _timing.format_table(header, rows),
    ]
    agr = result["agreement"]
    if "abs_diff" in agr:
        lines.append(
            f"  accuracy agreement ({agr['basis']}): jaxirm {agr['jaxirm_test_mean']:.4f} vs torch "
            f"{agr['torch_test_mean']:.4f}, |diff| = {agr['abs_diff']:.4f}, max per run "
            f"{agr['max_abs_diff_per_run']:.4f} (tolerance {agr['tolerance']}): {agr['status']}"
        )
    else:
        lines.append(f"  accuracy agreement: {agr['status']}")
    peak = fl["peak"]
    lines.append(
        f"  FLOPs per run-step: {_fmt(fl['per_run_step_xla'], '.4g')} (XLA cost analysis), "
        f"{fl['per_run_step_analytic']:.4g} (analytic 4nd + 30n); "
        f"achieved {_fmt(fl['achieved_gflops'], '.2f')} GFLOP/s vs matmul peak {peak['gflops']:.1f} "
        f"GFLOP/s ({peak['size']}x{peak['size']} float32)"
    )
    return "\n".join(lines + _format_goals(result["goals"]))


# ----------------------------------------------------------------------------------------------------------
# envs


def run_envs(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """Penalty + gradient cost against the number of environments: jaxirm, naive JAX and the PyTorch loop.

    jaxirm (``labels``) and PyTorch are timed as one interleaved group (they are compared); the naive JAX
    formulation, whose O(n·E) temporaries would disturb the others, as its own group.

    Args:
      sizes: problem sizes.
      tref: the `benchmarks.torch_reference` module, or None without PyTorch.
      seed: data seed.

    Returns:
      The section's JSON-serialisable results.
    """
    n, num_envs = sizes.envs_n, list(sizes.envs_num_envs)
    compared: dict[tuple[str, int], Callable[[], Any]] = {}
    naive: dict[tuple[str, int], Callable[[], Any]] = {}
    compile_s: dict[tuple[str, int], float] = {}
    agreement = []
    for e in num_envs:
        inputs = env_scaling.make_inputs("labels", n, e, seed)
        case = _timing.compile_case(jax.value_and_grad(env_scaling.objective("labels", e)), *inputs)
        compared[("jaxirm labels", e)] = case
        compile_s[("jaxirm labels", e)] = case.compile_s
        if sizes.envs_naive:
            slow = _timing.compile_case(jax.value_and_grad(env_scaling.objective("naive", e)), *inputs)
            naive[("jax naive", e)] = slow
            compile_s[("jax naive", e)] = slow.compile_s
        if tref is not None:
            f, y, envs = tref.to_torch(*(np.asarray(a) for a in inputs))

            def torch_case(f=f, y=y, envs=envs, e=e):
                return tref.env_loop_penalty_and_grad(f, y, envs, e)

            compared[("torch loop", e)] = torch_case
            value, grad = torch_case()
            jax_value, jax_grad = case()
            agreement.append(
                {
                    "num_envs": e,
                    "value_rel_diff": abs(value - float(jax_value)) / max(abs(float(jax_value)), 1e-12),
                    "grad_max_abs_diff": float(np.max(np.abs(grad - np.asarray(jax_grad)))),
                    "grad_max_abs": float(np.max(np.abs(np.asarray(jax_grad)))),
                }
            )
    times = _timing.interleaved_times(compared, sizes.envs_repeats, seed=seed)
    if naive:
        times.update(_timing.interleaved_times(naive, sizes.envs_repeats, seed=seed + 1))

    formulations = ["jaxirm labels"] + (["jax naive"] if naive else []) + (["torch loop"] if tref else [])
    med = {key: 1e3 * _median(v) for key, v in times.items()}
    rows = []
    for e in num_envs:
        row: dict[str, Any] = {"num_envs": e}
        for f in formulations:
            row[f] = {
                "median_ms": med[(f, e)],
                "ratio_vs_first": med[(f, e)] / med[(f, num_envs[0])],
                "compile_s": compile_s.get((f, e)),
                "times_ms": [1e3 * t for t in times[(f, e)]],
            }
        if tref is not None:
            row["torch_over_jaxirm"] = med[("torch loop", e)] / med[("jaxirm labels", e)]
        rows.append(row)
    ratio = rows[-1]["jaxirm labels"]["ratio_vs_first"]
    goals = [
        goal(f"jaxirm labels time ratio E={num_envs[-1]} / E={num_envs[0]}", ratio, "<=", GOALS["envs_ratio"])
    ]
    return {
        "config": {
            "n": n,
            "num_envs": num_envs,
            "repeats": sizes.envs_repeats,
            "objective": "value_and_grad of tv_l1(scale_grads(bce, logits, y, envs, E)) wrt logits",
            "formulations": formulations,
        },
        "rows": rows,
        "agreement": agreement,
        "goals": goals,
    }


def format_envs(result: dict[str, Any]) -> str:
    """The ``envs`` section as a table with its goals.

    Args:
      result: `run_envs`'s output.

    Returns:
      Printable text.
    """
    cfg = result["config"]
    forms = cfg["formulations"]
    first = cfg["num_envs"][0]
    header = ["E"] + [f"{f} ms" for f in forms] + [f"{f} / E={first}" for f in forms]
    has_torch = "torch loop" in forms
    if has_torch:
        header.append("torch / jaxirm")
    rows = []
    for r in result["rows"]:
        row = (
            [r["num_envs"]]
            + [round(r[f]["median_ms"], 3) for f in forms]
            + [round(r[f]["ratio_vs_first"], 2) for f in forms]
        )
        if has_torch:
            row.append(round(r["torch_over_jaxirm"], 1))
        rows.append(row)
    lines = [
        f"== envs: penalty + gradient, n = {cfg['n']}, median of {cfg['repeats']} interleaved repeats",
        _timing.format_table(header, rows),
    ]
    for a in result["agreement"]:
        lines.append(
            f"  torch loop vs jaxirm at E={a['num_envs']}: relative |dvalue| = {a['value_rel_diff']:.1e}, "
            f"max |dgrad| = {a['grad_max_abs_diff']:.1e} (max |grad| = {a['grad_max_abs']:.1e})"
        )
    return "\n".join(lines + _format_goals(result["goals"]))


# ----------------------------------------------------------------------------------------------------------
# datasize


def run_datasize(sizes: Sizes, tref: Any | None = None, seed: int = 0) -> dict[str, Any]:
    """Step time against n (interleaved, in this process) and peak memory (a fresh process per n).

    Args:
      sizes: problem sizes.
      tref: unused (the section is jaxirm only).
      seed: data seed.

    Returns:
      The section's JSON-serialisable results.
    """
    del tref
    hp = dict(_hparams(sizes), anneal_steps=0)  # the penalty is on, as after the warm-up
    solver = make_solver(sizes.datasize_envs, hp)
    dim = 10
    cases = {}
    for n in sizes.datasize_n:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, dim), dtype=np.float32)
        y = (rng.random(n) < 0.5).astype(np.float32)
        envs = (np.arange(n) % sizes.datasize_envs).astype(np.int32)
        batch = Batch(jax.device_put(x), jax.device_put(y), jax.device_put(envs))
        state = solver.init(jax.random.key(seed), batch)
        cases[n] = _timing.compile_case(scan_steps(solver, sizes.datasize_steps), state, batch)
    times = _timing.interleaved_times(cases, sizes.datasize_repeats, seed=seed)
    rows = []
    for i, n in enumerate(sizes.datasize_n):
        step_ms = 1e3 * _median(times[n]) / sizes.datasize_steps
        row: dict[str, Any] = {
            "n": n,
            "step_ms": step_ms,
            "ns_per_example": 1e6 * step_ms / n,
            "compile_s": cases[n].compile_s,
            "exponent_vs_previous": None,
        }
        if i:
            prev = rows[-1]
            row["exponent_vs_previous"] = math.log(step_ms / prev["step_ms"]) / math.log(n / prev["n"])
        rows.append(row)
    cases.clear()
    if sizes.datasize_memory != "none":
        for row in rows if sizes.datasize_memory == "all" else rows[-1:]:
            mem = _run_child(
                {
                    "kind": "datasize",
                    "n": row["n"],
                    "num_envs": sizes.datasize_envs,
                    "num_steps": sizes.datasize_steps,
                    "dim": dim,
                    "seed": seed,
                    "hparams": hp,
                }
            )
            row["memory"] = mem
    largest = rows[-1]
    peak = largest.get("memory", {}).get("peak_mb")
    goals = [
        goal(
            f"step time exponent between n={rows[-2]['n']} and n={largest['n']} (1 = linear)",
            largest["exponent_vs_previous"],
            "<=",
            GOALS["datasize_exponent"],
        ),
        goal(f"peak RSS at n={largest['n']}", peak, "<=", GOALS["datasize_peak_mb"], " MiB"),
    ]
    return {
        "config": {
            "n": list(sizes.datasize_n),
            "num_envs": sizes.datasize_envs,
            "dim": dim,
            "steps_per_call": sizes.datasize_steps,
            "repeats": sizes.datasize_repeats,
            "memory": "peak RSS (VmHWM) of a fresh process per n (data, compile, two calls); baselines "
            "after import jax (backend initialised) and after importing jaxirm",
            "memory_for": sizes.datasize_memory,
        },
        "rows": rows,
        "goals": goals,
    }


def format_datasize(result: dict[str, Any]) -> str:
    """The ``datasize`` section as a table with its goals.

    Args:
      result: `run_datasize`'s output.

    Returns:
      Printable text.
    """
    cfg = result["config"]
    header = ["n", "step ms", "ns/example", "exponent", "peak RSS MiB", "RSS - jax baseline MiB", "compile s"]
    rows = []
    base = None
    for r in result["rows"]:
        mem = r.get("memory") or {}
        peak = mem.get("peak_mb")
        base = mem.get("baseline_jax_mb", base)
        rows.append(
            [
                r["n"],
                round(r["step_ms"], 4),
                round(r["ns_per_example"], 2),
                _fmt(r["exponent_vs_previous"], ".2f"),
                _fmt(peak, ".0f"),
                _fmt(None if peak is None else peak - mem["baseline_jax_mb"], ".0f"),
                r["compile_s"],
            ]
        )
    lines = [
        f"== datasize: one IRM-TV-l1 step (jitted scan of {cfg['steps_per_call']} steps, time / steps), "
        f"E = {cfg['num_envs']}, d = {cfg['dim']}, median of {cfg['repeats']} interleaved repeats",
        _timing.format_table(header, rows),
    ]
    mems = [r.get("memory") or {} for r in result["rows"]]
    errors = [m["error"] for m in mems if "error" in m]
    if base is not None:
        lib = next(m["baseline_jaxirm_mb"] for m in mems if "baseline_jaxirm_mb" in m)
        lines.append(
            f"  baseline RSS: import jax + CPU backend {base:.0f} MiB; + import jaxirm {lib:.0f} MiB"
        )
    lines += [f"  memory child failed: {e}" for e in errors]
    return "\n".join(lines + _format_goals(result["goals"]))


# ----------------------------------------------------------------------------------------------------------
# compile


def run_compile(sizes: Sizes, tref: Any | None = None, seed: int = 0) -> dict[str, Any]:
    """Compile times of the simulation run and of the sweep, each in a fresh process.

    Args:
      sizes: problem sizes.
      tref: unused (the section is jaxirm only).
      seed: data seed.

    Returns:
      The section's JSON-serialisable results.
    """
    del tref
    hp = _hparams(sizes)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in DATA.items()}
    scan_spec = {
        "kind": "compile_scan",
        "num_steps": sizes.steps,
        "n_train": sizes.n_train,
        "seed": seed,
        "hparams": hp,
        "data": data,
    }
    sweep_spec = {
        "kind": "compile_sweep",
        "num_steps": sizes.compile_sweep_steps,
        "seeds": sizes.sweep_seeds,
        "lams": [float(v) for v in np.logspace(1, 4, sizes.sweep_lams)],
        "n_train": sizes.n_train,
        "n_test": sizes.n_test,
        "hparams": hp,
        "data": data,
    }
    if sizes.compile_fresh_each:
        scan, sweep = _run_child(scan_spec), _run_child(sweep_spec)
    else:
        both = _run_child([scan_spec, sweep_spec])
        scan, sweep = (both, both) if isinstance(both, dict) else both
    goals = [
        goal(
            f"compile of the {sizes.steps}-step scan (trace + lower + compile)",
            scan.get("total_s"),
            "<=",
            GOALS["compile_s"],
            " s",
        ),
        goal(
            f"compile inside the {sizes.sweep_seeds * sizes.sweep_lams}-run jaxirm.sweep",
            sweep.get("compile_s"),
            "<=",
            GOALS["compile_s"],
            " s",
        ),
    ]
    return {
        "config": {
            "scan_steps": sizes.steps,
            "sweep_runs": sizes.sweep_seeds * sizes.sweep_lams,
            "sweep_steps": sizes.compile_sweep_steps,
            "fresh_process_each": sizes.compile_fresh_each,
            "note": "persistent compilation cache disabled; the sweep's compiled program does not depend on "
            "its step count (one evaluation after the last step), so it runs with sweep_steps to keep the "
            "measurement short",
        },
        "scan": scan,
        "sweep": sweep,
        "goals": goals,
    }


def format_compile(result: dict[str, Any]) -> str:
    """The ``compile`` section as a table with its goals.

    Args:
      result: `run_compile`'s output.

    Returns:
      Printable text.
    """
    cfg = result["config"]
    scan, sweep = result["scan"], result["sweep"]
    header = ["program", "trace s", "lower s", "XLA compile s", "total s"]
    rows = []
    if "error" not in scan:
        rows.append(
            [
                f"scan of {cfg['scan_steps']} solver steps (AOT)",
                _fmt(scan["trace_lower_s"]),
                "(in trace)",
                scan["backend_compile_s"],
                scan["total_s"],
            ]
        )
    if "error" not in sweep:
        rows.append(
            [
                f"jaxirm.sweep, {cfg['sweep_runs']} runs",
                sweep["trace_s"],
                sweep["lower_s"],
                sweep["backend_compile_s"],
                sweep["compile_s"],
            ]
        )
    where = "fresh process each" if cfg["fresh_process_each"] else "one fresh process for both (smoke)"
    lines = [f"== compile: {where}, no persistent compilation cache", _timing.format_table(header, rows)]
    lines += [f"  child failed: {r['error']}" for r in (scan, sweep) if "error" in r]
    return "\n".join(lines + _format_goals(result["goals"]))


# ----------------------------------------------------------------------------------------------------------
# main

RUNNERS = {
    "single": (run_single, format_single),
    "sweep": (run_sweep, format_sweep),
    "envs": (run_envs, format_envs),
    "datasize": (run_datasize, format_datasize),
    "compile": (run_compile, format_compile),
}


def load_torch_reference(threads: int | None) -> tuple[Any | None, str | None]:
    """Imports `benchmarks.torch_reference` if PyTorch is installed.

    Args:
      threads: PyTorch intra-op threads to set (None: leave PyTorch's default).

    Returns:
      ``(module, None)``, or ``(None, reason)`` without PyTorch.
    """
    try:
        from benchmarks import torch_reference
    except ImportError as err:
        del err
        return None, f"PyTorch is not installed, so the PyTorch columns are skipped ({TORCH_HINT})"
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return torch_reference, None


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
    # In smoke mode the compile section, which only waits for its child processes, starts at once in a
    # background thread, overlapping with the other sections (its timings then mean nothing; smoke only).
    background: dict[str, Future] = {}
    executor = None
    if args.smoke and "compile" in args.only:
        executor = ThreadPoolExecutor(max_workers=1)
        background["compile"] = executor.submit(_timed, run_compile, sizes, tref, args.seed)
        report["config"]["background_sections"] = ["compile"]
    errors = 0
    try:
        for name in SECTIONS:
            if name not in args.only:
                continue
            runner, formatter = RUNNERS[name]
            try:
                if name in background:
                    result, seconds = background[name].result()
                else:
                    result, seconds = _timed(runner, sizes, tref, args.seed)
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
                print(formatter(result), flush=True)
            result["section_s"] = seconds
            report["sections"][name] = result
            report["goals"] += [dict(g, section=name) for g in result["goals"]]
            print(flush=True)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    print("== goals")
    for g in report["goals"]:
        value = "n/a" if g["value"] is None else f"{g['value']:.3g}{g['unit']}"
        print(
            f"  [{_verdict(g):4s}] {g['section']}: {g['name']} = {value} "
            f"(goal {g['op']} {g['threshold']:g}{g['unit']})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    print(f"wrote {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
