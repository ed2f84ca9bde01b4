"""The training sections of `benchmarks.compare` (private): ``single`` (one run) and ``sweep`` (seeds × λ).

Each ``run_*`` takes ``(sizes, tref, seed)`` (`Sizes`, the `benchmarks.torch_reference` module or None
without PyTorch, the first data/init seed) and returns the section's JSON-serialisable result; its table is
described in `benchmarks._sections`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

import jaxirm
from benchmarks import _timing
from benchmarks._compare_setup import (
    GOALS,
    Sizes,
    analytic_step_flops,
    data_json,
    device_batch,
    goal,
    hparams,
    logit_z_split,
    make_solver,
    matmul_peak,
    median,
    step_flops,
    sweep_data,
    train_steps,
)
from jaxirm.datasets import to_batch

__all__ = ["run_single", "run_sweep"]


def _agreement(jax_accs: Sequence[float], torch_accs: Sequence[float], basis: str) -> dict[str, Any]:
    """Whether the mean final test accuracies of both frameworks agree within the tolerance."""
    jax_mean, torch_mean = float(np.mean(jax_accs)), float(np.mean(torch_accs))
    diff = abs(jax_mean - torch_mean)
    return {
        "status": "OK" if diff <= GOALS["accuracy_tol"] else "VOID",
        "basis": basis,
        "jaxirm_test_mean": jax_mean,
        "torch_test_mean": torch_mean,
        "abs_diff": diff,
        "tolerance": GOALS["accuracy_tol"],
    }


def _speedup_goals(
    name: str, threshold: float, excl: float | None, incl: float | None
) -> list[dict[str, Any]]:
    """The two speedup goals of a section; ``name`` holds ``{}`` for "excl. compile" / "incl. compile"."""
    return [
        goal(name.format("excl. compile"), excl, ">=", threshold, "x"),
        goal(name.format("incl. compile"), incl, ">=", threshold, "x"),
    ]


# ----------------------------------------------------------------------------------------------------------
# single


def run_single(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """One IRM-TV-ℓ1 run on ``logit_z``: a jitted `jaxirm.run` and `jaxirm.fit` against the PyTorch loop.

    The three are timed interleaved. If seed ``seed``'s final accuracies disagree, ``accuracy_seeds``
    seeds are averaged (untimed).

    Args:
      sizes: problem sizes.
      tref: the PyTorch reference module, or None.
      seed: data and init seed of the timed run.

    Returns:
      ``{"config", "rows", "agreement", "void", "times_s", "fit_calls", "goals"}``.
    """
    hp = hparams(sizes)
    train, test = logit_z_split(seed, sizes.n_train, sizes.n_test)
    solver = make_solver(train.num_envs, hp)
    batch = device_batch(train)
    state = solver.init(jax.random.key(seed), batch)
    scan = _timing.compile_case(train_steps(solver, sizes.steps), state, batch)

    fit_calls: list[dict[str, float]] = []
    torch_calls: list[dict[str, Any]] = []

    def split(s: int) -> tuple[Any, Any]:
        return (train, test) if s == seed else logit_z_split(s, sizes.n_train, sizes.n_test)

    def fit_once(s: int = seed, record: bool = True) -> float:
        tr, te = split(s)
        with _timing.compile_timer() as ct:
            start = time.perf_counter()
            res = jaxirm.fit(
                solver,
                jax.random.key(s),
                to_batch(tr, with_z=False),
                sizes.steps,
                test=to_batch(te, with_z=False),
                eval_every=sizes.steps,
                progress=False,
            )
            wall = time.perf_counter() - start
        acc = float(res.selection["final"]["test_mean"])
        if record:
            fit_calls.append({"wall_s": wall, "compile_s": ct["total_s"], "test_mean": acc})
        return acc

    def torch_once(s: int = seed, record: bool = True) -> float:
        tr, te = split(s)
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

    scan_run = median(times["jaxirm scan"])
    fit_wall = median([c["wall_s"] for c in fit_calls])
    fit_compile = median([c["compile_s"] for c in fit_calls])
    fit_run = median([c["wall_s"] - c["compile_s"] for c in fit_calls])
    torch_run = None if tref is None else median([c["train_s"] for c in torch_calls])
    fit_acc = fit_calls[-1]["test_mean"]

    def row(name: str, run_s: float, compile_s: float | None, test_mean: float | None) -> dict[str, Any]:
        return {
            "implementation": name,
            "run_s": run_s,
            "step_ms": run_s * (1e3 / sizes.steps),
            "compile_s": compile_s,
            "speedup": None if torch_run is None else torch_run / run_s,
            "test_mean": test_mean,
        }

    rows: list[dict[str, Any]] = []
    agreement: dict[str, Any] = {"status": "n/a (no PyTorch)"}
    if tref is not None:
        per_seed = [{"seed": seed, "jaxirm": fit_acc, "torch": torch_calls[-1]["test_mean"]}]
        agreement = _agreement([fit_acc], [per_seed[0]["torch"]], f"seed {seed}")
        if agreement["status"] == "VOID" and sizes.accuracy_seeds > 1:
            for s in range(seed + 1, seed + sizes.accuracy_seeds):
                per_seed.append({"seed": s, "jaxirm": fit_once(s, False), "torch": torch_once(s, False)})
            basis = f"mean over {len(per_seed)} seeds (seed {seed} alone differed by more than the tolerance)"
            agreement = _agreement([p["jaxirm"] for p in per_seed], [p["torch"] for p in per_seed], basis)
        agreement["per_seed"] = per_seed
        threads = tref.torch_info()["torch_num_threads"]
        rows.append(row(f"torch eager loop ({threads} thread(s))", torch_run, None, per_seed[0]["torch"]))
    void = agreement["status"] == "VOID"
    scan_excl = row("jaxirm scan, excl. compile", scan_run, scan.compile_s, None)
    scan_incl = row("jaxirm scan, incl. compile", scan_run + scan.compile_s, scan.compile_s, None)
    rows += [
        scan_excl,
        scan_incl,
        row("jaxirm.fit, excl. compile", fit_run, fit_compile, fit_acc),
        row("jaxirm.fit end to end", fit_wall, fit_compile, fit_acc),
    ]
    scan_speedups = (None, None) if void else (scan_excl["speedup"], scan_incl["speedup"])
    return {
        "config": {
            "seed": seed,
            "n_train": sizes.n_train,
            "n_test": sizes.n_test,
            "steps": sizes.steps,
            "hparams": hp,
            "data": data_json(),
            "repeats": sizes.single_repeats,
            "evaluation": "test accuracy after the last step only, in both frameworks",
        },
        "rows": rows,
        "agreement": agreement,
        "void": void,
        "times_s": {k: list(v) for k, v in times.items()},
        "fit_calls": fit_calls,
        "goals": _speedup_goals(
            "speedup, jaxirm scan vs torch ({})", GOALS["single_speedup"], *scan_speedups
        ),
    }


# ----------------------------------------------------------------------------------------------------------
# sweep


def run_sweep(sizes: Sizes, tref: Any | None, seed: int = 0) -> dict[str, Any]:
    """Seeds × λ runs as one `jaxirm.sweep` call against sequential PyTorch runs, interleaved.

    Also the sweep's FLOP rate against the machine's float32 matmul peak, measured in this process.

    Args:
      sizes: problem sizes.
      tref: the PyTorch reference module, or None.
      seed: first seed of the grid (one ``logit_z`` dataset per seed).

    Returns:
      ``{"config", "rows", "jaxirm", "jaxirm_calls", "torch_runs", "agreement", "void", "flops", "goals"}``.
    """
    seeds = list(range(seed, seed + sizes.sweep_seeds))
    lams = np.logspace(1, 4, sizes.sweep_lams)
    hp = hparams(sizes)
    solver = make_solver(2, hp)
    parts = [logit_z_split(s, sizes.n_train, sizes.n_test) for s in seeds]
    train_stack, test_stack = sweep_data(parts)
    configs = [(s, float(lam)) for s in seeds for lam in lams]  # jaxirm.sweep's order: seed-major
    num_runs = len(configs)

    calls: dict[str, list[dict[str, Any]]] = {"per-seed data": [], "shared data": []}
    results: dict[str, Any] = {}

    def jax_sweep(kind: str) -> None:
        per_seed = kind == "per-seed data"
        train, test = (train_stack, test_stack) if per_seed else sweep_data(parts, per_seed=False)
        with _timing.compile_timer() as ct:
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
        tasks: list[tuple[Callable[[Any], None], Any]] = [(jax_sweep, k) for k in kinds]
        if tref is not None and blocks[r]:
            tasks.append((torch_block, blocks[r]))
        rng.shuffle(tasks)
        for task, arg in tasks:
            task(arg)

    # Floating-point rate against the machine's matmul peak, measured now.
    one = jax.device_put(sweep_data(parts, per_seed=False)[0])  # one run's training batch
    flops = step_flops(solver, solver.init(jax.random.key(0), one), one)
    peak = matmul_peak(sizes.peak_size, sizes.peak_repeats)

    def row(name: str, total_s: float, compile_s: float | None, speedup: float | None) -> dict[str, Any]:
        run_step_us = 1e6 * total_s / (num_runs * sizes.steps)
        return {
            "implementation": name,
            "total_s": total_s,
            "run_step_us": run_step_us,
            "compile_s": compile_s,
            "speedup": speedup,
        }

    rows: list[dict[str, Any]] = []
    torch_total = None
    if torch_runs:
        torch_total = float(np.mean([t["train_s"] for t in torch_runs])) * num_runs
        how = f"extrapolated from {len(torch_runs)} runs" if len(torch_runs) < num_runs else "measured"
        rows.append(row(f"torch, {num_runs} sequential runs ({how})", torch_total, None, 1.0))
    summary: dict[str, dict[str, float]] = {}
    for kind in kinds:
        summary[kind] = {
            key: median([c[key] for c in calls[kind]]) for key in ("run_s", "compile_s", "wall_s")
        }
        run_s, compile_s = summary[kind]["run_s"], summary[kind]["compile_s"]
        for label, total in (("excl. compile", run_s), ("incl. compile", run_s + compile_s)):
            speedup = None if torch_total is None else torch_total / total
            rows.append(row(f"jaxirm.sweep, {kind}, {label}", total, compile_s, speedup))

    # Agreement on the runs PyTorch trained: the same configurations in both frameworks.
    agreement: dict[str, Any] = {"status": "n/a (no PyTorch)"}
    if torch_runs:
        final = np.asarray(results["per-seed data"].selection["final"]["test_mean"])
        jax_accs = [float(final[t["index"]]) for t in torch_runs]
        torch_accs = [t["test_mean"] for t in torch_runs]
        agreement = _agreement(
            jax_accs, torch_accs, f"mean over the {len(torch_runs)} configurations PyTorch trained"
        )
        agreement["max_abs_diff_per_run"] = float(np.max(np.abs(np.subtract(jax_accs, torch_accs))))
    void = agreement["status"] == "VOID"
    head = summary["per-seed data"]
    rate = None if flops is None else num_runs * sizes.steps * flops / head["run_s"] / 1e9
    percent = None if rate is None else 100.0 * rate / peak["gflops"]
    speedups = (None, None)
    if not void and torch_total is not None:
        speedups = (torch_total / head["run_s"], torch_total / (head["run_s"] + head["compile_s"]))
    goals = _speedup_goals(
        "speedup, jaxirm.sweep (per-seed data, {}) vs torch", GOALS["sweep_speedup"], *speedups
    )
    goals.append(
        goal("jaxirm.sweep FLOP rate, % of matmul peak", percent, ">=", GOALS["sweep_peak_percent"], "%")
    )
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
            "torch_extrapolated": 0 < len(torch_runs) < num_runs,
        },
        "rows": rows,
        "jaxirm": summary,
        "jaxirm_calls": calls,
        "torch_runs": torch_runs,
        "agreement": agreement,
        "void": void,
        "flops": {
            "per_run_step_xla": flops,
            "per_run_step_analytic": analytic_step_flops(sizes.n_train, train_stack.x.shape[-1]),
            "total": None if flops is None else num_runs * sizes.steps * flops,
            "achieved_gflops": rate,
            "peak": peak,
            "percent_of_peak": percent,
        },
        "goals": goals,
    }
