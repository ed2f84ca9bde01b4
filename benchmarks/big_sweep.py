"""A large sweep as one `jaxirm.sweep` call: seeds × λ runs of IRM-TV-ℓ1 on the simulation (for accelerators).

Usage::

    python -m benchmarks.big_sweep --seeds 100 --lams 100 --steps 2000     # 10 000 runs
    python -m benchmarks.big_sweep --smoke                                 # seconds, for CI

Each seed gets its own `logit_z` dataset (``data_per_seed``, as the papers regenerate data per repeat) and
the λ grid is nested inside each seed. Prints and writes (JSON) the wall time with and without compilation,
the time per run-step, and the spread of the final test accuracies over λ, so that the numbers can be
checked against the CPU sweep of ``benchmarks.compare``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

import jaxirm
from jaxirm.datasets import logit_z, to_batch
from jaxirm.models import MLP

HPARAMS = {"lr": 0.02, "l2": 0.002, "anneal_steps": 0.0}


def run(seeds: int, lams: int, steps: int, n: int = 5000) -> dict:
    """Runs ``seeds × lams`` IRM-TV-ℓ1 runs as one sweep, twice (the second reuses the compiled program).

    Args:
      seeds: number of seeds, each with its own dataset.
      lams: number of λ values, log-spaced in [10, 10⁴].
      steps: full-batch steps per run.
      n: training (and test) examples per dataset.

    Returns:
      The measurements (JSON-serialisable).
    """
    parts = [logit_z(s, n_train=n, n_test=n) for s in range(seeds)]
    train, test = (to_batch([p[split] for p in parts], with_z=False) for split in (0, 1))
    solver = jaxirm.solvers.irm(MLP(), penalty="tv_l1")
    grid = {"lam": list(np.logspace(1, 4, lams)), **{k: [v] for k, v in HPARAMS.items()}}
    kw = dict(seeds=seeds, grid=grid, test=test, eval_every=steps, data_per_seed=True)
    start = time.perf_counter()
    first = jaxirm.sweep(solver, train, steps, **kw)
    with_compile = time.perf_counter() - start
    start = time.perf_counter()
    res = jaxirm.sweep(solver, train, steps, **kw)
    warm = time.perf_counter() - start
    runs = len(res.configs)
    final = res.selection["final"]
    np.testing.assert_allclose(final["test_mean"], first.selection["final"]["test_mean"], atol=1e-6)
    return {
        "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "runs": runs,
        "seeds": seeds,
        "lams": lams,
        "steps": steps,
        "n": n,
        "wall_s_incl_compile": with_compile,
        "wall_s": warm,
        "compile_s_estimate": with_compile - warm,
        "us_per_run_step": warm / (runs * steps) * 1e6,
        "diverged": int(np.sum(res.diverged)),
        "test_mean": float(np.mean(final["test_mean"])),
        "test_worst": float(np.mean(final["test_worst"])),
        "best_lam_worst": float(np.max(final["test_worst"])),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds, each with its own data (100)")
    parser.add_argument("--lams", type=int, default=100, help="lambda values per seed (100)")
    parser.add_argument("--steps", type=int, default=2000, help="steps per run (2000)")
    parser.add_argument("--n", type=int, default=5000, help="examples per dataset (5000)")
    parser.add_argument("--smoke", action="store_true", help="2 seeds x 2 lambdas x 20 steps, n = 200")
    parser.add_argument("--out", default="benchmarks/results/big_sweep.json", help="JSON output")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.lams, args.steps, args.n = 2, 2, 20, 200
    result = run(args.seeds, args.lams, args.steps, args.n)
    for key, value in result.items():
        print(f"{key:>20}: {value:.4g}" if isinstance(value, float) else f"{key:>20}: {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
