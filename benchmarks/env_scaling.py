"""How the cost of the TV-ℓ1 penalty's gradient scales with the number of environments E.

Times the jitted ``jax.value_and_grad`` (with respect to the logits) of

    tv_l1(scale_grads(bce_with_logits, logits, y, envs, num_envs))

at a fixed sample count n for several E, in three formulations:

* ``labels``: integer environment labels ``[n]`` (random, every environment present). `jaxirm.scale_grads`
  takes one per-example dummy scale and one reverse pass, then a segment sum: O(n + E). This is the
  headline: the time at the largest E over the time at the smallest E must stay ≤ ``--threshold``
  (1.5 by default, for E = 256 vs E = 2).
* ``weights``: soft weights ``[n, E]`` (random rows on the simplex). One ``[n, E]`` matrix product, O(n·E)
  by the size of the input itself; for information.
* ``naive``: the textbook formulation, for comparison only (it is defined here, not in `jaxirm`): `jax.vmap`
  over the E one-hot columns of a full-batch `jax.grad` over a *scalar* dummy scale of the weighted mean
  risk. Every environment runs its own backward pass over all n examples: O(n·E).

Every case is compiled first (the compile time is reported on its own), then timed interleaved: each
repeat runs every E once in a freshly shuffled order, blocking on every result. By default each formulation
is timed as its own interleaved group, because the ratios are taken within a formulation and the naive
O(n·E) cases (seconds at E = 256, gigabytes of temporaries) would otherwise disturb whatever runs after them;
``--interleave all`` shuffles all cases together instead. The median over the repeats is reported together
with its ratio to the same formulation at the smallest E.

Run from the repository root::

    python -m benchmarks.env_scaling                 # n = 200 000, E in {2, 8, 64, 256}
    python -m benchmarks.env_scaling --smoke         # n = 2 000, E in {2, 8}: a few seconds, for CI
    python -m benchmarks.env_scaling --repeats 30 --out /tmp/env_scaling.json

The exit status is 1 when the headline ratio exceeds the threshold, except with ``--smoke`` (always 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxirm
from benchmarks import _timing
from jaxirm.losses import bce_with_logits

__all__ = ["FORMULATIONS", "make_inputs", "naive_scale_grads", "objective", "run", "main"]

#: The formulations timed, in table order. ``labels`` is the headline.
FORMULATIONS = ("labels", "weights", "naive")
#: How the cases are interleaved: within each formulation (default) or all together.
INTERLEAVE = ("formulation", "all")

DEFAULT_N = 200_000
DEFAULT_NUM_ENVS = (2, 8, 64, 256)
DEFAULT_REPEATS = 15
SMOKE_N = 2_000
SMOKE_NUM_ENVS = (2, 8)
SMOKE_REPEATS = 3
THRESHOLD = 1.5
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "env_scaling.json"


def naive_scale_grads(loss_fn: Callable, logits: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
    """g_e = ∂R_e(w)/∂w at w = 1 the textbook way: one scalar dummy scale and one `jax.grad` per environment.

    ``jax.vmap`` maps the full-batch gradient over the E weight columns, so each environment has its own
    backward pass over all n examples (O(n·E)). For comparison only; `jaxirm.scale_grads` computes the same
    values in O(n + E) for labels.

    Args:
      loss_fn: per-example loss ``(logits, y) -> [n]``.
      logits: ``[n]`` logits.
      y: ``[n]`` targets.
      weights: ``[n, E]`` non-negative environment weights (one-hot for labels).

    Returns:
      ``[E]`` gradients; 0 for an environment without mass.
    """

    def one_env(column: jax.Array) -> jax.Array:
        mass = jnp.sum(column)
        safe = jnp.where(mass > 0, mass, 1.0)

        def risk(w: jax.Array) -> jax.Array:
            return jnp.sum(column * loss_fn(w * logits, y)) / safe

        return jnp.where(mass > 0, jax.grad(risk)(jnp.ones((), logits.dtype)), 0.0)

    return jax.vmap(one_env, in_axes=1)(weights)


def objective(formulation: str, num_envs: int) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """The scalar TV-ℓ1 objective of ``(logits, y, envs)`` for one formulation.

    Args:
      formulation: one of `FORMULATIONS`.
      num_envs: the static number of environments E.

    Returns:
      ``f(logits, y, envs) -> tv_l1(g)``, with g from `jaxirm.scale_grads` (``labels``, ``weights``) or
      `naive_scale_grads` on the one-hot columns of the labels (``naive``).

    Raises:
      ValueError: unknown formulation.
    """
    if formulation in ("labels", "weights"):

        def fn(logits, y, envs):
            return jaxirm.tv_l1(jaxirm.scale_grads(bce_with_logits, logits, y, envs, num_envs))

    elif formulation == "naive":

        def fn(logits, y, envs):
            weights = jax.nn.one_hot(envs, num_envs, dtype=logits.dtype)
            return jaxirm.tv_l1(naive_scale_grads(bce_with_logits, logits, y, weights))

    else:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    return fn


def make_inputs(
    formulation: str, n: int, num_envs: int, seed: int = 0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Random logits, binary targets and an environment assignment with every environment present.

    Args:
      formulation: ``labels`` / ``naive`` (int32 labels ``[n]``) or ``weights`` (float32 ``[n, E]`` rows on
        the simplex).
      n: number of examples (≥ ``num_envs``).
      num_envs: number of environments E.
      seed: NumPy seed; the logits and targets depend on it only, not on E or the formulation.

    Returns:
      ``(logits [n], y [n], envs)`` on the default device.

    Raises:
      ValueError: ``n`` < ``num_envs`` or unknown formulation.
    """
    if n < num_envs:
        raise ValueError(f"n = {n} must be >= num_envs = {num_envs} for every environment to be present")
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=n).astype(np.float32)
    y = (rng.random(n) < 0.5).astype(np.float32)
    env_rng = np.random.default_rng([seed, num_envs])
    if formulation in ("labels", "naive"):
        labels = env_rng.integers(0, num_envs, size=n)
        labels[:num_envs] = np.arange(num_envs)  # every environment present ...
        envs = env_rng.permutation(labels).astype(np.int32)  # ... at random positions
    elif formulation == "weights":
        envs = env_rng.dirichlet(np.ones(num_envs), size=n).astype(np.float32)
    else:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    return jax.device_put(logits), jax.device_put(y), jax.device_put(envs)


def _agreement(fast: Any, slow: Any, num_envs: int) -> dict[str, float]:
    """Differences between the ``labels`` and ``naive`` ``(value, grad)`` results on the same inputs."""
    return {
        "num_envs": num_envs,
        "value_abs_diff": float(jnp.abs(fast[0] - slow[0])),
        "value": float(fast[0]),
        "grad_max_abs_diff": float(jnp.max(jnp.abs(fast[1] - slow[1]))),
        "grad_max_abs": float(jnp.max(jnp.abs(fast[1]))),
    }


def run(
    n: int = DEFAULT_N,
    num_envs: Sequence[int] = DEFAULT_NUM_ENVS,
    formulations: Sequence[str] = FORMULATIONS,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = 2,
    seed: int = 0,
    threshold: float = THRESHOLD,
    check: bool = True,
    interleave: str = "formulation",
) -> dict[str, Any]:
    """Compiles and times every (formulation, E) case, interleaved, and collects the results.

    Args:
      n: number of examples.
      num_envs: the environment counts E; ratios are taken against the smallest.
      formulations: a subset of `FORMULATIONS`.
      repeats: timed runs per case (the median is reported).
      warmup: untimed runs per case after compiling.
      seed: data seed.
      threshold: the bound on the ``labels`` ratio (largest E / smallest E).
      check: also compare ``labels`` with ``naive`` numerically at the smallest and largest E.
      interleave: ``"formulation"`` times each formulation's cases as one interleaved group (one after the
        other); ``"all"`` interleaves every case of every formulation.

    Returns:
      A JSON-serialisable dict with keys ``benchmark``, ``config``, ``environment``, ``results`` (one entry
      per case: formulation, num_envs, compile_s, median/min/max/IQR in ms, ratio and the raw times),
      ``headline`` and ``agreement`` (``labels`` vs ``naive`` value and gradient differences at the smallest
      and largest E; None without ``check``).

    Raises:
      ValueError: empty ``num_envs``, unknown formulation or ``interleave``, ``repeats`` < 1 or
        ``n`` < max(E).
    """
    num_envs = sorted(set(int(e) for e in num_envs))
    if not num_envs:
        raise ValueError("num_envs must not be empty")
    for formulation in formulations:
        if formulation not in FORMULATIONS:
            raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if interleave not in INTERLEAVE:
        raise ValueError(f"interleave must be one of {INTERLEAVE}, got {interleave!r}")

    cases: dict[tuple[str, int], _timing.CompiledCase] = {}
    for formulation in formulations:
        for e in num_envs:
            grad_fn = jax.value_and_grad(objective(formulation, e))
            cases[(formulation, e)] = _timing.compile_case(
                grad_fn, *make_inputs(formulation, n, e, seed), warmup=warmup
            )
    if interleave == "all":
        groups = [list(cases)]
    else:
        groups = [[key for key in cases if key[0] == formulation] for formulation in formulations]
    times: dict[tuple[str, int], list[float]] = {}
    for group_seed, group in enumerate(groups):
        times.update(
            _timing.interleaved_times({key: cases[key] for key in group}, repeats, seed + group_seed)
        )

    base_e = num_envs[0]
    results = []
    for (formulation, e), case in cases.items():
        stats = _timing.summarize(times[(formulation, e)])
        base = _timing.summarize(times[(formulation, base_e)])["median_ms"]
        results.append(
            {
                "formulation": formulation,
                "num_envs": e,
                "compile_s": case.compile_s,
                **stats,
                "ratio": stats["median_ms"] / base,
                "times_ms": [1e3 * t for t in times[(formulation, e)]],
            }
        )

    agreement = None
    if check:  # the labels and naive cases share their inputs (same seed and E), so reuse the executables
        agreement = []
        for e in sorted({base_e, num_envs[-1]}):
            fast = cases.get(("labels", e)) or _timing.compile_case(
                jax.value_and_grad(objective("labels", e)), *make_inputs("labels", n, e, seed), warmup=0
            )
            slow = cases.get(("naive", e)) or _timing.compile_case(
                jax.value_and_grad(objective("naive", e)), *make_inputs("naive", n, e, seed), warmup=0
            )
            agreement.append(_agreement(fast(), slow(), e))

    headline = None
    if "labels" in formulations:
        ratio = next(
            r["ratio"] for r in results if r["formulation"] == "labels" and r["num_envs"] == num_envs[-1]
        )
        headline = {
            "formulation": "labels",
            "num_envs": num_envs[-1],
            "baseline_num_envs": base_e,
            "ratio": ratio,
            "threshold": threshold,
            "passed": bool(ratio <= threshold),
        }
    return {
        "benchmark": "env_scaling",
        "objective": "value_and_grad(tv_l1(scale_grads(bce_with_logits, logits, y, envs, E))) wrt logits",
        "config": {
            "n": n,
            "num_envs": num_envs,
            "formulations": list(formulations),
            "repeats": repeats,
            "warmup": warmup,
            "seed": seed,
            "baseline_num_envs": base_e,
            "interleave": interleave,
            "timing": "median over repeats; shuffled interleaving per repeat; blocked until ready",
        },
        "environment": _timing.environment_info(),
        "results": results,
        "headline": headline,
        "agreement": agreement,
    }


def format_results(report: dict[str, Any]) -> str:
    """The results as a plain-text table followed by the headline verdict.

    Args:
      report: the dict returned by `run`.

    Returns:
      Printable text.
    """
    base = report["config"]["baseline_num_envs"]
    rows = [
        [r["formulation"], r["num_envs"], r["median_ms"], r["iqr_ms"], r["ratio"], r["compile_s"]]
        for r in report["results"]
    ]
    header = ["formulation", "E", "median ms", "IQR ms", f"ratio vs E={base}", "compile s"]
    env = report["environment"]
    cfg = report["config"]
    lines = [
        f"env_scaling: n = {cfg['n']}, repeats = {cfg['repeats']}, jax {env['jax_version']}, "
        f"{env['backend']} ({env['device_kind']}), {env['usable_cpu_count']} usable CPUs, "
        f"interleave = {cfg['interleave']}",
        _timing.format_table(header, rows),
    ]
    for agreement in report.get("agreement") or []:
        lines.append(
            f"labels vs naive at E={agreement['num_envs']}: |Δvalue| = {agreement['value_abs_diff']:.2e}, "
            f"max |Δgrad| = {agreement['grad_max_abs_diff']:.2e} "
            f"(max |grad| = {agreement['grad_max_abs']:.2e})"
        )
    head = report.get("headline")
    if head:
        verdict = "PASS" if head["passed"] else "FAIL"
        lines.append(
            f"labels ratio E={head['num_envs']} / E={head['baseline_num_envs']} = {head['ratio']:.3f} "
            f"(threshold {head['threshold']}): {verdict}"
        )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.env_scaling",
        description="Cost of value_and_grad(tv_l1(scale_grads(...))) as the number of environments grows.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny fast run for CI: n = {SMOKE_N}, E in {list(SMOKE_NUM_ENVS)}, {SMOKE_REPEATS} repeats; "
        "never exits non-zero",
    )
    parser.add_argument("--n", type=int, default=None, help=f"number of examples (default {DEFAULT_N})")
    parser.add_argument(
        "--num-envs",
        type=int,
        nargs="+",
        default=None,
        metavar="E",
        help=f"environment counts (default {' '.join(map(str, DEFAULT_NUM_ENVS))})",
    )
    parser.add_argument(
        "--formulations",
        nargs="+",
        choices=FORMULATIONS,
        default=list(FORMULATIONS),
        help="formulations to time (default all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help=f"timed runs per case (default {DEFAULT_REPEATS})"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per case after compiling")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="bound on the labels ratio")
    parser.add_argument(
        "--interleave",
        choices=INTERLEAVE,
        default="formulation",
        help="interleave the E of each formulation as one group (default) or all cases together",
    )
    parser.add_argument("--no-check", action="store_true", help="skip the labels-vs-naive numerical check")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = SMOKE_N if args.smoke else DEFAULT_N
    if args.num_envs is None:
        args.num_envs = list(SMOKE_NUM_ENVS if args.smoke else DEFAULT_NUM_ENVS)
    if args.repeats is None:
        args.repeats = SMOKE_REPEATS if args.smoke else DEFAULT_REPEATS
    if args.smoke:
        args.warmup = min(args.warmup, 1)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, prints the table and writes the JSON report.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status: 1 if the ``labels`` ratio exceeds the threshold outside smoke mode, else 0.
    """
    args = _parse_args(argv)
    report = run(
        n=args.n,
        num_envs=args.num_envs,
        formulations=args.formulations,
        repeats=args.repeats,
        warmup=args.warmup,
        seed=args.seed,
        threshold=args.threshold,
        check=not args.no_check and {"labels", "naive"} <= set(args.formulations),
        interleave=args.interleave,
    )
    report["config"]["smoke"] = bool(args.smoke)
    print(format_results(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    failed = report["headline"] is not None and not report["headline"]["passed"]
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
