"""What every section of `benchmarks.compare` shares (private): goals, sizes, the solver, data and helpers.

`benchmarks._compare_child` imports it too, lazily, after taking its memory baselines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxirm
from benchmarks import _timing
from benchmarks.env_scaling import THRESHOLD
from jaxirm.datasets import EnvData, logit_z, to_batch
from jaxirm.models import MLP
from jaxirm.solvers import Batch, Solver, SolverState, irm

#: Goal thresholds.
GOALS = {
    "single_speedup": 20.0,
    "sweep_speedup": 50.0,
    "sweep_peak_percent": 25.0,
    "accuracy_tol": 0.01,
    "datasize_peak_mb": 1024.0,
    "datasize_exponent": 1.2,
    "envs_ratio": THRESHOLD,
    "compile_s": 5.0,
}
#: The authors' IRM-TV-ℓ1 setting for ``logit_z``: ``parameterMap["IRM-TV-L1"]["logit_z"]`` of
#: ``IRM-TV/IRM_TV-Others/parameter.py`` in the released code, github.com/laizhr/OOD-TV-IRM (the code of
#: arXiv 2405.01389; the file warns that its values are not the paper's). Its steps are a placeholder.
AUTHORS_HPARAMS = {"lr": 0.02, "l2": 0.002, "lam": 2000.0, "anneal_steps": 2000}
#: The `logit_z` arguments of that entry: training p_s (0.999, 0.7), label noise 0.1.
DATA = {"p_s_train": (0.999, 0.7), "noise_ratio": 0.1}
ROOT = Path(__file__).resolve().parents[1]
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
# The solver, its training loop and its data.


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


def train_steps(solver: Solver, num_steps: int) -> Callable[[SolverState, Batch], SolverState]:
    """``(state, batch) -> state``: `jaxirm.run` of ``num_steps`` steps, the per-step metrics dropped.

    Only the final state is returned, so the compiled program does not write the stacked metrics.

    Args:
      solver: a `Solver` (closed over: static under `jax.jit`).
      num_steps: the scan length (static).

    Returns:
      The (unjitted) function of arrays, for `_timing.compile_case` or `jax.jit`.
    """
    return lambda state, batch: jaxirm.run(solver, state, batch, num_steps)[0]


def hparams(sizes: Sizes, lam: float | None = None) -> dict[str, float]:
    """The authors' hyperparameters with the warm-up of ``sizes`` (and another λ if given)."""
    hp = dict(AUTHORS_HPARAMS, anneal_steps=sizes.anneal_steps)
    if lam is not None:
        hp["lam"] = float(lam)
    return hp


def data_json(data: dict[str, Any] = DATA) -> dict[str, Any]:
    """``data`` with its tuples as lists (JSON, child-process specs)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def logit_z_split(seed: int, n_train: int, n_test: int, data: dict[str, Any] = DATA) -> tuple[EnvData, ...]:
    """``logit_z(seed)`` with the comparison's data arguments: ``(train, test)``."""
    return logit_z(seed, n_train=n_train, n_test=n_test, **data)


def sweep_data(parts: Sequence[tuple[EnvData, ...]], per_seed: bool = True) -> tuple[Batch, Batch]:
    """The ``(train, test)`` batches of a `jaxirm.sweep` over per-seed ``(train, test)`` datasets (no z).

    Args:
      parts: one ``(train, test)`` pair per seed.
      per_seed: stack them on a leading seed axis (``data_per_seed=True``), else the first seed's pair alone
        (one dataset shared by every run).

    Returns:
      ``(train, test)``.
    """
    if per_seed:
        return to_batch([p[0] for p in parts], with_z=False), to_batch([p[1] for p in parts], with_z=False)
    return to_batch(parts[0][0], with_z=False), to_batch(parts[0][1], with_z=False)


def device_batch(data: EnvData) -> Batch:
    """One dataset as a `Batch` of device arrays (no z)."""
    return jax.device_put(to_batch(data, with_z=False))


def median(values: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(values))


# ----------------------------------------------------------------------------------------------------------
# Goals, child processes, FLOPs and PyTorch.


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


def run_child(spec: dict[str, Any] | list[dict[str, Any]], timeout: float = 900.0) -> Any:
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
    median_s = median(_timing.interleaved_times({"mm": case}, repeats)["mm"])
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
    """The cross-check count of one IRM-TV-ℓ1 step of the linear model: 4nd + 30n (see `benchmarks.compare`).

    Args:
      n: examples.
      d: features.

    Returns:
      FLOPs per step.
    """
    return 4.0 * n * d + 30.0 * n


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
