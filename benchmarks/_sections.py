"""The table of sections of `benchmarks.compare` (private): each section's run function, title, columns and
notes, in the order they run. `benchmarks._format.format_section` prints them all.
"""

from __future__ import annotations

from typing import Any

from benchmarks._compare_scaling import run_compile, run_datasize, run_envs
from benchmarks._compare_training import run_single, run_sweep
from benchmarks._format import Column, Result, Section

__all__ = ["SECTIONS"]

REPEATS = "median of {repeats} interleaved repeats"


def _agreement(result: Result) -> list[str]:
    """The accuracy agreement of the ``single`` and ``sweep`` sections."""
    agr = result["agreement"]
    if "abs_diff" not in agr:
        return [f"  accuracy agreement: {agr['status']}"]
    per_run = agr.get("max_abs_diff_per_run")
    per_run_text = "" if per_run is None else f", max per run {per_run:.4f}"
    return [
        f"  accuracy agreement ({agr['basis']}): jaxirm {agr['jaxirm_test_mean']:.4f} vs torch "
        f"{agr['torch_test_mean']:.4f}, |diff| = {agr['abs_diff']:.4f}{per_run_text} (tolerance "
        f"{agr['tolerance']}): {agr['status']}"
    ]


def _speed_columns(time: Column, per_step: Column) -> tuple[Column, ...]:
    """The columns of the ``single`` and ``sweep`` tables: implementation, ``time``, ``per_step``, compile
    time and speedup over PyTorch."""
    speedup = Column("speedup", "speedup", ".1f")
    return (
        Column("implementation", "implementation"),
        time,
        per_step,
        Column("compile s", "compile_s", ".3f"),
        speedup,
    )


def _single_notes(result: Result) -> list[str]:
    void = ["  VOID: the accuracies disagree, so the speedups are not reported as goals"]
    return _agreement(result) + (void if result["void"] else [])


def _sweep_title(cfg: Result) -> str:
    lams = cfg["lams"]
    return (
        f"{cfg['runs']} runs ({len(cfg['seeds'])} seeds x {len(lams)} lam in [{lams[0]:g}, {lams[-1]:g}]), "
        f"{cfg['steps']} steps each, " + REPEATS.format(**cfg)
    )


def _sweep_notes(result: Result) -> list[str]:
    fl = result["flops"]
    peak = fl["peak"]
    xla = "-" if fl["per_run_step_xla"] is None else f"{fl['per_run_step_xla']:.4g}"
    achieved = "-" if fl["achieved_gflops"] is None else f"{fl['achieved_gflops']:.2f}"
    return _agreement(result) + [
        f"  FLOPs per run-step: {xla} (XLA cost analysis), {fl['per_run_step_analytic']:.4g} (analytic "
        f"4nd + 30n); achieved {achieved} GFLOP/s vs matmul peak {peak['gflops']:.1f} GFLOP/s "
        f"({peak['size']}x{peak['size']} float32)"
    ]


def _envs_columns(cfg: Result) -> list[Column]:
    forms, first = cfg["formulations"], cfg["num_envs"][0]
    columns = [Column("E", "num_envs")]
    columns += [Column(f"{f} ms", lambda r, f=f: r[f]["median_ms"], 3) for f in forms]
    columns += [Column(f"{f} / E={first}", lambda r, f=f: r[f]["ratio_vs_first"], 2) for f in forms]
    if "torch loop" in forms:
        columns.append(Column("torch / jaxirm", "torch_over_jaxirm", 1))
    return columns


def _envs_notes(result: Result) -> list[str]:
    return [
        f"  torch loop vs jaxirm at E={a['num_envs']}: relative |dvalue| = {a['value_rel_diff']:.1e}, "
        f"max |dgrad| = {a['grad_max_abs_diff']:.1e} (max |grad| = {a['grad_max_abs']:.1e})"
        for a in result["agreement"]
    ]


def _memory(row: Result) -> dict[str, Any]:
    return row.get("memory") or {}


def _rss_above_jax(row: Result) -> float | None:
    mem = _memory(row)
    return None if mem.get("peak_mb") is None else mem["peak_mb"] - mem["baseline_jax_mb"]


def _datasize_notes(result: Result) -> list[str]:
    mems = [_memory(r) for r in result["rows"]]
    with_base = [m for m in mems if "baseline_jax_mb" in m]
    lines = []
    if with_base:
        base = with_base[-1]["baseline_jax_mb"]
        lib = next(m["baseline_jaxirm_mb"] for m in mems if "baseline_jaxirm_mb" in m)
        lines.append(
            f"  baseline RSS: import jax + CPU backend {base:.0f} MiB; + import jaxirm {lib:.0f} MiB"
        )
    return lines + [f"  memory child failed: {m['error']}" for m in mems if "error" in m]


def _compile_title(cfg: Result) -> str:
    where = "fresh process each" if cfg["fresh_process_each"] else "one fresh process for both (smoke)"
    return f"{where}, no persistent compilation cache"


def _compile_rows(result: Result) -> list[dict[str, Any]]:
    cfg, scan, sweep = result["config"], result["scan"], result["sweep"]
    rows = []
    if "error" not in scan:
        rows.append(
            {
                "program": f"scan of {cfg['scan_steps']} solver steps (AOT)",
                "trace_s": scan["trace_lower_s"],
                "lower_s": "(in trace)",
                "backend_s": scan["backend_compile_s"],
                "total_s": scan["total_s"],
            }
        )
    if "error" not in sweep:
        rows.append(
            {
                "program": f"jaxirm.sweep, {cfg['sweep_runs']} runs",
                "trace_s": sweep["trace_s"],
                "lower_s": sweep["lower_s"],
                "backend_s": sweep["backend_compile_s"],
                "total_s": sweep["compile_s"],
            }
        )
    return rows


def _compile_notes(result: Result) -> list[str]:
    return [f"  child failed: {r['error']}" for r in (result["scan"], result["sweep"]) if "error" in r]


_SECTIONS = (
    Section(
        name="single",
        run=run_single,
        title="IRM-TV-l1 on logit_z, n_train = {n_train}, {steps} steps, " + REPEATS,
        columns=(
            *_speed_columns(Column("per-run s", "run_s"), Column("per-step ms", "step_ms", 4)),
            Column("final test acc", "test_mean", ".4f"),
        ),
        notes=_single_notes,
    ),
    Section(
        name="sweep",
        run=run_sweep,
        title=_sweep_title,
        columns=_speed_columns(Column("total s", "total_s"), Column("per run-step us", "run_step_us", 2)),
        notes=_sweep_notes,
    ),
    Section(
        name="envs",
        run=run_envs,
        title="penalty + gradient, n = {n}, " + REPEATS,
        columns=_envs_columns,
        notes=_envs_notes,
    ),
    Section(
        name="datasize",
        run=run_datasize,
        title="one IRM-TV-l1 step (jitted scan of {steps_per_call} steps, time / steps), E = {num_envs}, "
        "d = {dim}, " + REPEATS,
        columns=(
            Column("n", "n"),
            Column("step ms", "step_ms", 4),
            Column("ns/example", "ns_per_example", 2),
            Column("exponent", "exponent_vs_previous", ".2f"),
            Column("peak RSS MiB", lambda r: _memory(r).get("peak_mb"), ".0f"),
            Column("RSS - jax baseline MiB", _rss_above_jax, ".0f"),
            Column("compile s", "compile_s"),
        ),
        notes=_datasize_notes,
    ),
    Section(
        name="compile",
        run=run_compile,
        title=_compile_title,
        columns=(
            Column("program", "program"),
            Column("trace s", "trace_s", ".3f"),
            Column("lower s", "lower_s"),
            Column("XLA compile s", "backend_s"),
            Column("total s", "total_s"),
        ),
        rows=_compile_rows,
        notes=_compile_notes,
        background_in_smoke=True,
    ),
)

#: Every section by name, in the order they run.
SECTIONS: dict[str, Section] = {s.name: s for s in _SECTIONS}
