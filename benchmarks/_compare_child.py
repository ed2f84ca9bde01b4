"""Measurements that `benchmarks.compare` runs in a fresh Python process (private).

Run as ``python -m benchmarks._compare_child '<json>'``; the JSON names the measurement (``"kind"``) and its
sizes, and the child prints one JSON line with the result. A fresh process is what makes these numbers real:

* ``datasize``: peak resident memory (``ru_maxrss``) of one IRM-TV-ℓ1 training call at n examples, with the
  baselines after ``import jax`` (backend initialised) and after importing jaxirm;
* ``compile_scan``: ahead-of-time trace + lower and XLA compile of a jitted `jaxirm.run` (the `lax.scan`
  over ``solver.step``; nothing in jax's in-memory caches yet);
* ``compile_sweep``: compile time inside one `jaxirm.sweep` call, read from `jax.monitoring`'s compile
  duration events (trace, lowering to MLIR and XLA backend compile).

The persistent compilation cache is disabled in the child, so nothing is read from disk. jax, jaxirm and
`benchmarks._compare_setup` are imported inside the measurements, after the memory baselines.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")


def _maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own address
    space. ``getrusage(...).ru_maxrss`` is not usable for a child: Linux carries the parent's high-water mark
    across ``fork``/``vfork`` + ``exec`` into it (so a child of a 600 MiB parent "peaks" at 600 MiB before
    doing anything), and ``RUSAGE_CHILDREN`` is the maximum over every child so far. Elsewhere, ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def datasize(n: int, num_envs: int, num_steps: int, dim: int, seed: int, hparams: dict) -> dict:
    """Peak RSS of compiling and running ``num_steps`` IRM-TV-ℓ1 steps on ``n`` random examples.

    Args:
      n: number of examples.
      num_envs: number of environment labels.
      num_steps: steps in the timed scan.
      dim: number of features.
      seed: data and init seed.
      hparams: solver hyperparameters (``lr``, ``l2``, ``lam``, ``anneal_steps``).

    Returns:
      ``{"n", "baseline_jax_mb", "baseline_jaxirm_mb", "data_mb", "compiled_mb", "peak_mb", "step_ms"}``.
    """
    import jax

    jax.devices()
    base_jax = _maxrss_mb()
    import numpy as np

    from jaxirm.solvers import Batch

    base_lib = _maxrss_mb()
    from benchmarks._compare_setup import make_solver, train_steps

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    y = (rng.random(n) < 0.5).astype(np.float32)
    envs = (np.arange(n) % num_envs).astype(np.int32)
    batch = Batch(jax.device_put(x), jax.device_put(y), jax.device_put(envs))
    del x, y, envs
    data_mb = _maxrss_mb()
    solver = make_solver(num_envs, hparams)
    state = solver.init(jax.random.key(seed), batch)
    compiled = jax.jit(train_steps(solver, num_steps)).lower(state, batch).compile()
    compiled_mb = _maxrss_mb()
    jax.block_until_ready(compiled(state, batch))
    start = time.perf_counter()
    jax.block_until_ready(compiled(state, batch))
    step_ms = 1e3 * (time.perf_counter() - start) / num_steps
    return {
        "n": n,
        "baseline_jax_mb": base_jax,
        "baseline_jaxirm_mb": base_lib,
        "data_mb": data_mb,
        "compiled_mb": compiled_mb,
        "peak_mb": _maxrss_mb(),
        "step_ms": step_ms,
    }


def compile_scan(num_steps: int, n_train: int, seed: int, hparams: dict, data: dict) -> dict:
    """Trace + lower and compile times of a jitted scan of ``num_steps`` solver steps on ``logit_z``.

    Args:
      num_steps: scan length.
      n_train: training examples.
      seed: data and init seed.
      hparams: solver hyperparameters.
      data: extra `logit_z` keyword arguments.

    Returns:
      ``{"trace_lower_s", "backend_compile_s", "total_s"}``.
    """
    import jax

    from benchmarks._compare_setup import device_batch, logit_z_split, make_solver, train_steps

    train, _ = logit_z_split(seed, n_train, 4, data)
    batch = device_batch(train)
    solver = make_solver(train.num_envs, hparams)
    state = jax.block_until_ready(solver.init(jax.random.key(seed), batch))
    start = time.perf_counter()
    lowered = jax.jit(train_steps(solver, num_steps)).lower(state, batch)
    mid = time.perf_counter()
    lowered.compile()
    end = time.perf_counter()
    return {"trace_lower_s": mid - start, "backend_compile_s": end - mid, "total_s": end - start}


def compile_sweep(
    num_steps: int,
    seeds: int,
    lams: list[float],
    n_train: int,
    n_test: int,
    hparams: dict,
    data: dict,
    data_per_seed: bool = True,
) -> dict:
    """Compile time inside one `jaxirm.sweep` call (seeds × λ grid, evaluation after the last step).

    Args:
      num_steps: steps per run (the compiled program's structure does not depend on it).
      seeds: number of seeds.
      lams: the λ grid.
      n_train: training examples per dataset.
      n_test: test examples per dataset.
      hparams: solver hyperparameters.
      data: extra `logit_z` keyword arguments.
      data_per_seed: one dataset per seed (stacked) or one shared dataset.

    Returns:
      ``{"compile_s", "trace_s", "lower_s", "backend_compile_s", "wall_s", "runs"}``.
    """
    import jaxirm
    from benchmarks._compare_setup import logit_z_split, make_solver, sweep_data
    from benchmarks._timing import compile_timer

    train, test = sweep_data([logit_z_split(s, n_train, n_test, data) for s in range(seeds)], data_per_seed)
    solver = make_solver(2, hparams)
    with compile_timer() as ct:
        start = time.perf_counter()
        result = jaxirm.sweep(
            solver,
            train,
            num_steps,
            seeds=seeds,
            grid={"lam": lams},
            test=test,
            eval_every=num_steps,
            data_per_seed=data_per_seed,
        )
        wall = time.perf_counter() - start
    return {
        "compile_s": ct["total_s"],
        "trace_s": ct["trace_s"],
        "lower_s": ct["lower_s"],
        "backend_compile_s": ct["backend_s"],
        "wall_s": wall,
        "runs": len(result.configs),
    }


KINDS = {"datasize": datasize, "compile_scan": compile_scan, "compile_sweep": compile_sweep}


def main(argv: list[str] | None = None) -> int:
    """Runs the measurement(s) named in the JSON argument and prints the result(s) as one JSON line.

    Args:
      argv: ``[json]``: an object with ``"kind"`` (one of `KINDS`) and the keyword arguments of that
        function, or a list of such objects run one after the other in this process (a list result).

    Returns:
      0.
    """
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])

    def one(s: dict) -> dict:
        s = dict(s)
        return KINDS[s.pop("kind")](**s)

    print(json.dumps([one(s) for s in spec] if isinstance(spec, list) else one(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
