"""The scaling sections of `benchmarks.compare` (private): ``envs``, ``datasize`` and ``compile``.

Each ``run_*`` takes ``(sizes, tref, seed)`` (`Sizes`, the `benchmarks.torch_reference` module or None
without PyTorch, the data seed) and returns the section's JSON-serialisable result; its table is described
in `benchmarks._sections`. ``datasize`` and ``compile`` are jaxirm only and ignore ``tref``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import _timing, env_scaling
from benchmarks._compare_setup import (
    GOALS,
    Sizes,
    data_json,
    goal,
    hparams,
    make_solver,
    median,
    run_child,
    train_steps,
)
from jaxirm.solvers import Batch

__all__ = ["run_compile", "run_datasize", "run_envs"]


# ----------------------------------------------------------------------------------------------------------
# envs


def run_envs(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """Penalty + gradient cost against the number of environments: jaxirm, naive JAX and the PyTorch loop.

    jaxirm (``labels``) and PyTorch are timed as one interleaved group (they are compared); the naive JAX
    formulation, whose O(n·E) temporaries would disturb the others, as its own group.

    Args:
      sizes: problem sizes (``envs_*``).
      tref: the PyTorch reference module (its per-environment loop), or None.
      seed: seed of the logits, labels and environments.

    Returns:
      ``{"config", "rows", "agreement", "goals"}``; a row per E, with one entry per formulation.
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
    med = {key: 1e3 * median(v) for key, v in times.items()}
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
    name = f"jaxirm labels time ratio E={num_envs[-1]} / E={num_envs[0]}"
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
        "goals": [goal(name, ratio, "<=", GOALS["envs_ratio"])],
    }


# ----------------------------------------------------------------------------------------------------------
# datasize


def run_datasize(sizes: Sizes, tref: Any | None = None, seed: int = 0) -> dict[str, Any]:
    """Step time against n (interleaved, in this process) and peak memory (a fresh process per n).

    Args:
      sizes: problem sizes (``datasize_*``).
      tref: ignored.
      seed: seed of the random data and of the initial parameters.

    Returns:
      ``{"config", "rows", "goals"}``; a row per n, with the child's ``memory`` where it was measured.
    """
    del tref
    hp = dict(hparams(sizes), anneal_steps=0)  # the penalty is on, as after the warm-up
    solver = make_solver(sizes.datasize_envs, hp)
    dim = 10
    cases = {}
    for n in sizes.datasize_n:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, dim), dtype=np.float32)
        y = (rng.random(n) < 0.5).astype(np.float32)
        envs = (np.arange(n) % sizes.datasize_envs).astype(np.int32)
        batch = jax.device_put(Batch(x, y, envs))
        state = solver.init(jax.random.key(seed), batch)
        cases[n] = _timing.compile_case(train_steps(solver, sizes.datasize_steps), state, batch)
    times = _timing.interleaved_times(cases, sizes.datasize_repeats, seed=seed)
    rows = []
    for i, n in enumerate(sizes.datasize_n):
        step_ms = 1e3 * median(times[n]) / sizes.datasize_steps
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
            spec = {"n": row["n"], "num_envs": sizes.datasize_envs, "num_steps": sizes.datasize_steps}
            row["memory"] = run_child({"kind": "datasize", **spec, "dim": dim, "seed": seed, "hparams": hp})
    largest = rows[-1]
    peak = largest.get("memory", {}).get("peak_mb")
    exponent = f"step time exponent between n={rows[-2]['n']} and n={largest['n']} (1 = linear)"
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
        "goals": [
            goal(exponent, largest["exponent_vs_previous"], "<=", GOALS["datasize_exponent"]),
            goal(f"peak RSS at n={largest['n']}", peak, "<=", GOALS["datasize_peak_mb"], " MiB"),
        ],
    }


# ----------------------------------------------------------------------------------------------------------
# compile


def run_compile(sizes: Sizes, tref: Any | None = None, seed: int = 0) -> dict[str, Any]:
    """Compile times of the simulation run and of the sweep, each in a fresh process.

    Args:
      sizes: problem sizes (``steps``, ``sweep_*``, ``compile_*``).
      tref: ignored.
      seed: data seed of the scan's dataset.

    Returns:
      ``{"config", "scan", "sweep", "goals"}``: the two children's results (or ``{"error"}``).
    """
    del tref
    common = {"n_train": sizes.n_train, "hparams": hparams(sizes), "data": data_json()}
    scan_spec = {"kind": "compile_scan", "num_steps": sizes.steps, "seed": seed, **common}
    sweep_spec = {
        "kind": "compile_sweep",
        "num_steps": sizes.compile_sweep_steps,
        "seeds": sizes.sweep_seeds,
        "lams": [float(v) for v in np.logspace(1, 4, sizes.sweep_lams)],
        "n_test": sizes.n_test,
        **common,
    }
    if sizes.compile_fresh_each:
        scan, sweep = run_child(scan_spec), run_child(sweep_spec)
    else:
        both = run_child([scan_spec, sweep_spec])
        scan, sweep = (both, both) if isinstance(both, dict) else both
    runs = sizes.sweep_seeds * sizes.sweep_lams
    return {
        "config": {
            "scan_steps": sizes.steps,
            "sweep_runs": runs,
            "sweep_steps": sizes.compile_sweep_steps,
            "fresh_process_each": sizes.compile_fresh_each,
            "note": "persistent compilation cache disabled; the sweep's compiled program does not depend on "
            "its step count (one evaluation after the last step), so it runs with sweep_steps to keep the "
            "measurement short",
        },
        "scan": scan,
        "sweep": sweep,
        "goals": [
            goal(
                f"compile of the {sizes.steps}-step scan (trace + lower + compile)",
                scan.get("total_s"),
                "<=",
                GOALS["compile_s"],
                " s",
            ),
            goal(
                f"compile inside the {runs}-run jaxirm.sweep",
                sweep.get("compile_s"),
                "<=",
                GOALS["compile_s"],
                " s",
            ),
        ],
    }
