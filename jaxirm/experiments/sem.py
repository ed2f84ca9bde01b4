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

import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxirm import solvers, sweep
from jaxirm.datasets import irm_sem, irm_sem_truth, sem_errors, to_batch
from jaxirm.experiments._methods import describe_hparams
from jaxirm.experiments._plan import Run
from jaxirm.experiments._registry import Experiment, Method, register
from jaxirm.experiments._store import append_rows, lock, read_results
from jaxirm.experiments._tables import _write_tables, summarize
from jaxirm.losses import squared_error
from jaxirm.models import LinearFeatures

__all__ = ["SEM_HPARAMS", "SEM_VARIANTS", "SEM_SIGMAS", "sem", "sem_coefficients", "plot_sem"]

SEM_VARIANTS = ("FOU", "FEU", "POU", "PEU")
"""The IRM paper's SEM setups run: fully/partially observed × homo/heteroskedastic Y-noise, unscrambled."""

SEM_SIGMAS = (0.2, 2.0)
"""Training environments (σ). The IRM paper's IRM trains on σ 0.2 and 2 (its σ = 5 environment only
validates the penalty weight); with σ = 5 in the training set its penalty, which scales as σ⁴, is dominated
by that one environment and Adam ends at the pooled least-squares solution (see docs/results.md)."""

SEM_N_PER_ENV = 1000
"""Examples per training environment, the IRM paper's ``--n_samples``."""

SEM_STEPS = 20_000
"""Full-batch Adam steps (from Φ = I)."""

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
    return irm_sem(seed, n_per_env=SEM_N_PER_ENV, variant=variant, sigmas_train=SEM_SIGMAS)


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


def _format(table: Sequence[dict]) -> str:
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


_CSV_FIELDS = ("method", "selection", "seeds", "mean", "mean_std", "worst", "worst_std", "diverged")


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


def run_sem(run: Run) -> list[dict]:
    """The ``sem`` runner (`Experiment.runner`): every variant × method × seed, each method's seeds vmapped.

    Rows are appended to ``out/results.jsonl`` after each (variant, method) with ``test_mean`` = causal and
    ``test_worst`` = non-causal error (and ``coef``, β̂); rerunning skips (method, seed) pairs already there
    for the same steps and hyperparameters. ``table.md``, ``table.csv`` and ``plot.png`` follow, in ``out``
    for the full registered run and in ``out/partial/<tag>`` otherwise (`jaxirm.experiments` ``table_dir``).
    The rows carry no provenance, so ``run.reuse_stale`` changes nothing.

    Args:
      run: the checked run (`jaxirm.experiments.Run`) of `jaxirm.experiments.reproduce`'s arguments; its
        method names read ``"FOU: IRM (vector)"``, ….

    Returns:
      The summary table (one row per variant × method, selection ``"final"``).

    Raises:
      ValueError: ``run.checkpoints`` (not supported).
    """
    if run.checkpoints:
        raise ValueError("the sem experiment does not save checkpoints; run it without --checkpoints")
    with lock(run.out):
        done = {(r["method"], r["seed"]) for r in read_results(run.out) if run.current(r)}
        data: dict[str, list] = {}
        total, finished = len(run.methods) * run.seeds, 0
        for index, method in enumerate(run.methods, start=1):
            head = f"[{index}/{len(run.methods)}] {method.name}"
            variant, _ = _variant_of(method.name)
            todo = [s for s in range(run.seeds) if (method.name, s) not in done]
            run.tick(method.name, finished + run.seeds - len(todo), total)
            finished += run.seeds
            if not todo:
                run.log(f"{head}: all {run.seeds} seeds already in {run.results}")
                continue
            if variant not in data:
                data[variant] = [_load(s, variant)[0] for s in range(run.seeds)]
            batch = to_batch([data[variant][s] for s in todo], with_z=False)
            solver = run.solvers[method.name]
            run.log(f"{head}: {len(todo)} seeds × {run.steps} steps ...")
            start = time.perf_counter()
            result = sweep(
                solver,
                batch,
                run.steps,
                seeds=todo,
                grid={k: [v] for k, v in run.hparams[method.name].items()},
                eval_every=run.steps,
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
                        "experiment": run.exp.name,
                        "method": method.name,
                        "seed": config["seed"],
                        "selection": "final",
                        "test_mean": causal,
                        "test_worst": noncausal,
                        "step": run.steps,
                        "diverged": bool(result.diverged[i]),
                        "steps": run.steps,
                        "hparams": run.hparams[method.name],
                        "metric": "mse",
                        "coef": [float(c) for c in coefs[i]],
                        "sweep_wall_s": round(wall, 3),
                    }
                )
            append_rows(run.results, rows)
            run.tick(method.name, finished, total)
            run.log(
                f"    done in {wall:.1f} s: causal error {np.mean([r['test_mean'] for r in rows]):.4f}, "
                f"non-causal {np.mean([r['test_worst'] for r in rows]):.4f}"
            )
        chosen = {m.name for m in run.methods}
        rows = [r for r in read_results(run.out) if run.current(r) and r["seed"] < run.seeds]
        table = summarize(run.exp, [r for r in rows if r["method"] in chosen])
        # A partial run (other seeds/steps, a subset of methods, overrides) never replaces the full tables.
        run.tables.mkdir(parents=True, exist_ok=True)
        _write_tables(run.exp, run.tables, table, fields=_CSV_FIELDS, body=_format(table))
        if run.plot and table:
            fig = plot_sem(table)
            fig.savefig(run.tables / "plot.png", dpi=120, bbox_inches="tight")
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
        load=_load,
        val=None,
        methods=methods,
        num_steps=SEM_STEPS,
        eval_every=SEM_STEPS,
        metric="mse",
        selections=("final",),
        notes=(
            "data: irm_sem (IRM paper section 5.1), dim 5 + 5, weights ones, unscrambled; training "
            f"environments sigma {SEM_SIGMAS}, {SEM_N_PER_ENV} examples each",
            "Phi: the IRM paper's linear d x d map without bias, initialised to the identity; scalar-dummy "
            "methods predict (x Phi)·1, vector-dummy methods penalise the gradient w.r.t. w in w·(x Phi)",
            f"hyperparameters: {describe_hparams(SEM_HPARAMS, steps=SEM_STEPS)} (full batch; the loss is "
            "divided by 1 + lambda)",
            "columns: causal error = mean squared error of S·beta on Z1's coefficients (ones); non-causal "
            "error = on Z2's (zeros); in results.jsonl they are test_mean and test_worst",
        ),
        runner=run_sem,
    )
