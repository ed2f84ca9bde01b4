"""The IRM paper's linear SEM (arXiv 1907.02893, section 5.1): causal and non-causal coefficient errors.

``jaxirm reproduce sem`` trains ERM, IRM and IRM-TV-ℓ1 with a scalar dummy and with the IRM paper's vector
dummy on `jaxirm.datasets.irm_sem` (variants FOU, FEU, POU, PEU) and scores the linear solution β̂ with
`jaxirm.datasets.sem_errors`. The registry's loop scores test predictions, so this experiment has its own
runner (`Experiment.runner`); its rows keep the registry's format with

* ``test_mean`` = the **causal error** (mean squared error of β̂ on Z1's coefficients) and
* ``test_worst`` = the **non-causal error** (mean squared error on Z2's, whose true values are 0),

both lower-is-better (metric ``"mse"``), so `jaxirm.experiments.summarize` and ``format_table`` read them
unchanged: in its tables the column "mean" is the causal and "worst" the non-causal error.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxirm import solvers
from jaxirm.datasets import irm_sem, irm_sem_truth, sem_errors
from jaxirm.experiments._registry import Experiment, Method, register
from jaxirm.losses import squared_error
from jaxirm.models import LinearFeatures
from jaxirm.solvers import Batch

__all__ = ["SEM_HPARAMS", "SEM_VARIANTS", "SEM_SIGMAS", "sem", "sem_coefficients", "plot_sem"]

SEM_VARIANTS = ("FOU", "FEU", "POU", "PEU")
"""The IRM paper's SEM setups run: fully/partially observed × homo/heteroskedastic Y-noise, unscrambled."""

SEM_SIGMAS = (0.2, 2.0)
"""Training environments (σ). The IRM paper's IRM trains on σ 0.2 and 2 (its σ = 5 environment only
validates the penalty weight); with σ = 5 in the training set its penalty, which scales as σ⁴, is dominated
by that one environment and Adam ends at the pooled least-squares solution (see docs/results.md)."""

SEM_N_PER_ENV = 1000
"""Examples per training environment, the IRM paper's ``--n_samples``."""

SEM_HPARAMS = {"lr": 1e-3, "l2": 0.0, "lam": 1000.0, "anneal_steps": 0.0}
"""Adam 1e-3 (the IRM paper's), no L2, penalty weight 1000 from the first step (the paper's reg = 1e-4,
λ = (1 − reg)/(reg·d) for its penalty averaged over the d = 10 dummy entries), Φ = I at the start."""

_METHODS = (
    ("ERM", None, "scalar"),
    ("IRM", "tv_l2", "scalar"),
    ("IRM-TV-l1", "tv_l1", "scalar"),
    ("IRM (vector)", "tv_l2", "vector"),
    ("IRM-TV-l1 (vector)", "tv_l1", "vector"),
)


def _build(penalty: str | None, dummy: str):
    if penalty is None:
        return lambda: solvers.erm(LinearFeatures(sum_features=True), loss=squared_error)
    model = LinearFeatures(sum_features=dummy == "scalar")
    return lambda: solvers.irm(
        model, penalty=penalty, num_envs=len(SEM_SIGMAS), loss=squared_error, dummy=dummy
    )


def _variant_of(name: str) -> tuple[str, str]:
    variant, method = name.split(": ", 1)
    return variant, method


def _load(seed: int, variant: str = "FOU"):
    train, test = irm_sem(seed, n_per_env=SEM_N_PER_ENV, variant=variant, sigmas_train=SEM_SIGMAS)
    return train, None, test


def sem_coefficients(solver, states, dim: int) -> np.ndarray:
    """The linear coefficients β̂ of stacked solver states: predict(e_k) − predict(0) for every unit vector.

    Exact for any affine model (a bias cancels); for `jaxirm.models.LinearFeatures` it is Φ·1.

    Args:
      solver: the `jaxirm.solvers.Solver` the states belong to.
      states: `jaxirm.solvers.SolverState` with a leading run axis ``[R]`` (e.g. ``SweepResult.state``).
      dim: number of input features (X's width).

    Returns:
      ``[R, dim]`` float64 coefficients.
    """
    eye = jnp.eye(dim, dtype=jnp.float32)
    zero = jnp.zeros((1, dim), jnp.float32)

    def one(state):
        return solver.predict(state, eye) - solver.predict(state, zero)

    return np.asarray(jax.vmap(one)(states), dtype=np.float64)


def _summary_row(exp: Experiment, name: str, rows: Sequence[dict]) -> dict:
    causal = np.array([r["test_mean"] for r in rows])
    noncausal = np.array([r["test_worst"] for r in rows])
    return {
        "method": name,
        "selection": "final",
        "seeds": len(rows),
        "mean": float(causal.mean()),
        "mean_std": float(causal.std()),
        "worst": float(noncausal.mean()),
        "worst_std": float(noncausal.std()),
        "diverged": int(sum(bool(r["diverged"]) for r in rows)),
        "registered": sorted(r["seed"] for r in rows) == list(range(exp.seeds))
        and all(r.get("steps") == exp.num_steps for r in rows),
    }


def _format(exp: Experiment, table: Sequence[dict]) -> str:
    lines = [
        "| variant | method | causal error | non-causal error |",
        "|---|---|---|---|",
    ]
    for e in table:
        variant, method = _variant_of(e["method"])
        flag = f" ({e['diverged']} diverged)" if e["diverged"] else ""
        lines.append(
            f"| {variant} | {method}{flag} | {e['mean']:.4f} ± {e['mean_std']:.4f} | "
            f"{e['worst']:.4f} ± {e['worst_std']:.4f} |"
        )
    return "\n".join(lines)


def _write(exp: Experiment, out: Path, table: Sequence[dict]) -> None:
    fields = ["method", "selection", "seeds", "mean", "mean_std", "worst", "worst_std", "diverged"]
    with (out / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    parts = [f"# {exp.name}", "", exp.description, ""]
    parts += [f"- {note}" for note in exp.notes]
    parts += ["", _format(exp, table), ""]
    (out / "table.md").write_text("\n".join(parts))


def plot_sem(table: Sequence[dict]) -> Any:
    """Causal and non-causal errors per method, one panel per SEM variant (the IRM paper's Figure 3 style).

    Args:
      table: the summary rows of the ``sem`` experiment (``method`` = ``"VARIANT: METHOD"``, ``mean`` =
        causal error, ``worst`` = non-causal error).

    Returns:
      A matplotlib ``Figure``.

    Raises:
      ImportError: matplotlib is not installed.
    """
    from jaxirm.plotting import _pyplot

    plt = _pyplot()
    variants = list(dict.fromkeys(_variant_of(e["method"])[0] for e in table))
    fig, axes = plt.subplots(1, len(variants), figsize=(3.6 * len(variants), 3.8), sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = [e for e in table if _variant_of(e["method"])[0] == variant]
        xs = np.arange(len(rows))
        for offset, key, label, color in (
            (-0.2, "mean", "causal error", "tab:blue"),
            (0.2, "worst", "non-causal error", "tab:orange"),
        ):
            values = np.maximum([e[key] for e in rows], 1e-6)
            ax.bar(xs + offset, values, 0.4, yerr=[e[f"{key}_std"] for e in rows], label=label, color=color)
        ax.set_yscale("log")
        ax.set_title(variant)
        ax.set_xticks(xs)
        ax.set_xticklabels([_variant_of(e["method"])[1] for e in rows], rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean squared coefficient error (lower is better)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("irm_sem: causal and non-causal coefficient errors (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def run_sem(
    exp: Experiment,
    *,
    seeds: int | None = None,
    steps: int | None = None,
    out: str | os.PathLike = "results",
    methods: Sequence[str] | None = None,
    progress: bool | None = None,
    plot: bool = True,
    log: Any = None,
    on_progress: Any = None,
    overrides: Mapping[str, float] | None = None,
    reuse_stale: bool = False,
    checkpoints: bool = False,
) -> list[dict]:
    """The ``sem`` runner (`Experiment.runner`): every variant × method × seed, each method's seeds vmapped.

    Rows are appended to ``out/results.jsonl`` after each (variant, method) with ``test_mean`` = causal and
    ``test_worst`` = non-causal error (and ``coef``, β̂); rerunning skips (method, seed) pairs already there
    for the same steps and hyperparameters. ``table.md``, ``table.csv`` and ``plot.png`` follow, in ``out``
    for the full registered run and in ``out/partial/<tag>`` otherwise (`jaxirm.experiments` ``table_dir``).

    Args:
      exp: the ``sem`` experiment.
      seeds: number of seeds (default: the experiment's).
      steps: training steps per run (default: the experiment's).
      out: output directory.
      methods: restrict to these method names (``"FOU: IRM (vector)"``, …).
      progress: print progress lines (default: on an interactive terminal without ``CI``).
      plot: write ``plot.png``.
      log: a callable taking one line of progress text.
      on_progress: ``(method, done, total)`` callback, as in `jaxirm.experiments.reproduce`.
      overrides: ``{name: value}`` replacing the registered hyperparameters of the methods that take them.
      reuse_stale: accepted for the interface; rows carry no provenance here.
      checkpoints: not supported (must be False).

    Returns:
      The summary table (one row per variant × method, selection ``"final"``).

    Raises:
      ValueError: ``seeds``/``steps`` < 1, ``checkpoints``, an unknown override, or ``out`` not writable.
      KeyError: an unknown method name.
    """
    from jaxirm.experiments._run import (
        _is_current,
        _progress_log,
        check_out_dir,
        read_results,
        table_dir,
    )
    from jaxirm.experiments._store import append_rows, lock
    from jaxirm.loops import sweep

    del reuse_stale
    if checkpoints:
        raise ValueError("the sem experiment does not save checkpoints; run it without --checkpoints")
    num_seeds = exp.seeds if seeds is None else int(seeds)
    num_steps = exp.num_steps if steps is None else int(steps)
    if num_seeds < 1 or num_steps < 1:
        raise ValueError(f"seeds and steps must be >= 1, got seeds={num_seeds}, steps={num_steps}")
    chosen = exp.methods if methods is None else tuple(exp.method(m) for m in methods)
    overrides = dict(overrides or {})
    built = {m.name: m.build() for m in chosen}
    hparams = {}
    for m in chosen:
        accepted = {k: v for k, v in overrides.items() if k in built[m.name].defaults}
        hparams[m.name] = json.loads(json.dumps({k: float(v) for k, v in {**m.hparams, **accepted}.items()}))
    unknown = set(overrides) - {k for s in built.values() for k in s.defaults}
    if unknown:
        raise ValueError(f"overrides: no sem method takes {sorted(unknown)}")
    out = check_out_dir(out)
    path = out / "results.jsonl"
    log = _progress_log(log, progress)
    tick = on_progress or (lambda method, done, total: None)
    current = _is_current(exp, num_steps, hparams)

    with lock(out):
        done = {(r["method"], r["seed"]) for r in read_results(out) if current(r)}
        data: dict[str, list] = {}
        total, finished = len(chosen) * num_seeds, 0
        for index, method in enumerate(chosen, start=1):
            variant, _ = _variant_of(method.name)
            todo = [s for s in range(num_seeds) if (method.name, s) not in done]
            tick(method.name, finished + num_seeds - len(todo), total)
            finished += num_seeds
            if not todo:
                log(f"[{index}/{len(chosen)}] {method.name}: all {num_seeds} seeds already in {path}")
                continue
            if variant not in data:
                data[variant] = [_load(s, variant)[0] for s in range(num_seeds)]
            train = [data[variant][s] for s in todo]
            batch = Batch(
                x=np.stack([d.x for d in train]),
                y=np.stack([d.y for d in train]),
                envs=np.stack([d.envs for d in train]),
            )
            solver = built[method.name]
            log(f"[{index}/{len(chosen)}] {method.name}: {len(todo)} seeds × {num_steps} steps ...")
            start = time.perf_counter()
            result = sweep(
                solver,
                batch,
                num_steps,
                seeds=todo,
                grid={k: [v] for k, v in hparams[method.name].items()},
                eval_every=num_steps,
                metric="mse",
                data_per_seed=True,
            )
            wall = time.perf_counter() - start
            coefs = sem_coefficients(solver, result.state, batch.x.shape[-1])
            rows = []
            for i, config in enumerate(result.configs):
                causal, noncausal = sem_errors(coefs[i], irm_sem_truth(config["seed"], variant=variant))
                rows.append(
                    {
                        "experiment": exp.name,
                        "method": method.name,
                        "seed": config["seed"],
                        "selection": "final",
                        "test_mean": causal,
                        "test_worst": noncausal,
                        "step": num_steps,
                        "diverged": bool(result.diverged[i]),
                        "steps": num_steps,
                        "hparams": hparams[method.name],
                        "metric": "mse",
                        "coef": [float(c) for c in coefs[i]],
                        "sweep_wall_s": round(wall, 3),
                    }
                )
            append_rows(path, rows)
            tick(method.name, finished, total)
            log(
                f"    done in {wall:.1f} s: causal error {np.mean([r['test_mean'] for r in rows]):.4f}, "
                f"non-causal {np.mean([r['test_worst'] for r in rows]):.4f}"
            )
        rows = [r for r in read_results(out) if current(r) and r["seed"] < num_seeds]
        table = []
        for method in chosen:
            sel = [r for r in rows if r["method"] == method.name]
            if sel:
                table.append(_summary_row(exp, method.name, sel))
        # A partial run (other seeds/steps, a subset of methods, overrides) never replaces the full tables.
        tables = table_dir(exp, out, seeds=seeds, steps=steps, methods=methods, overrides=overrides)
        tables.mkdir(parents=True, exist_ok=True)
        _write(exp, tables, table)
        if plot and table:
            fig = plot_sem(table)
            fig.savefig(tables / "plot.png", dpi=120, bbox_inches="tight")
    return table


@register("sem")
def sem() -> Experiment:
    """The IRM paper's linear SEM: causal/non-causal coefficient errors of ERM and IRM, scalar/vector dummy.

    `irm_sem` variants FOU, FEU, POU, PEU (dim 5 + 5, weights "ones"), training environments σ 0.2 and 2 with
    1000 examples each (the IRM paper's IRM setting), 20 000 Adam steps at lr 1e-3 from Φ = I, no L2,
    penalty weight 1000; Φ is the paper's linear 10×10 map for every method. The table's "mean" is the
    causal and "worst" the non-causal error (lower is better).
    """
    methods = tuple(
        Method(
            f"{variant}: {name}",
            _build(penalty, dummy),
            {"lr": SEM_HPARAMS["lr"], "l2": 0.0} if penalty is None else SEM_HPARAMS,
        )
        for variant in SEM_VARIANTS
        for name, penalty, dummy in _METHODS
    )
    return Experiment(
        name="sem",
        description=(sem.__doc__ or "").strip().splitlines()[0],
        load=_load,
        methods=methods,
        num_steps=20_000,
        seeds=10,
        eval_every=20_000,
        metric="mse",
        selections=("final",),
        notes=(
            "data: irm_sem (IRM paper section 5.1), dim 5 + 5, weights ones, unscrambled; training "
            f"environments sigma {SEM_SIGMAS}, {SEM_N_PER_ENV} examples each",
            "Phi: the IRM paper's linear d x d map without bias, initialised to the identity; scalar-dummy "
            "methods predict (x Phi)·1, vector-dummy methods penalise the gradient w.r.t. w in w·(x Phi)",
            "hyperparameters: Adam lr 1e-3, l2 0, penalty weight 1000 from step 0 (loss / (1 + lambda)), "
            "20000 full-batch steps",
            "columns: causal error = mean squared error of S·beta on Z1's coefficients (ones); non-causal "
            "error = on Z2's (zeros); in results.jsonl they are test_mean and test_worst",
        ),
        runner=run_sem,
    )
