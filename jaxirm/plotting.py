"""Plots of reproduction results (matplotlib, Agg backend; figures are returned, never shown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["plot_results"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'jaxirm[cli]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_results(experiment: Any, table: Sequence[dict], selection: str = "final") -> Any:
    """Bar chart of every method's mean and worst test metric (± std over seeds), beside the paper's.

    Args:
      experiment: the `jaxirm.experiments.Experiment` (for its name, metric and ceiling).
      table: rows from `jaxirm.experiments.summarize`.
      selection: which model selection to plot.

    Returns:
      A matplotlib ``Figure`` (save it with ``fig.savefig``).

    Raises:
      ImportError: matplotlib is not installed.
    """
    plt = _pyplot()
    rows = [e for e in table if e["selection"] == selection]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2))
    xs = range(len(rows))
    width = 0.2
    ax.bar(
        [x - 1.5 * width for x in xs],
        [e["mean"] for e in rows],
        width,
        yerr=[e["mean_std"] for e in rows],
        label="ours: mean",
        color="#4c72b0",
    )
    ax.bar(
        [x - 0.5 * width for x in xs],
        [e["worst"] for e in rows],
        width,
        yerr=[e["worst_std"] for e in rows],
        label="ours: worst",
        color="#dd8452",
    )
    paper = [(x, e) for x, e in zip(xs, rows, strict=True) if "paper_mean" in e]
    if paper:
        ax.bar(
            [x + 0.5 * width for x, _ in paper],
            [e["paper_mean"] for _, e in paper],
            width,
            yerr=[e["paper_mean_std"] for _, e in paper],
            label="paper: mean",
            color="#8fa8d6",
        )
        ax.bar(
            [x + 1.5 * width for x, _ in paper],
            [e["paper_worst"] for _, e in paper],
            width,
            yerr=[e["paper_worst_std"] for _, e in paper],
            label="paper: worst",
            color="#f0b890",
        )
    if getattr(experiment, "ceiling", None) is not None:
        ax.axhline(
            experiment.ceiling,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"invariant ceiling {experiment.ceiling:.4f}",
        )
    ax.set_xticks(list(xs))
    ax.set_xticklabels([e["method"] for e in rows], rotation=35, ha="right")
    ax.set_ylabel("test accuracy" if experiment.metric == "accuracy" else "test MSE")
    ax.set_title(f"{experiment.name}: selection '{selection}'")
    if experiment.metric == "accuracy":
        ax.set_ylim(0.0, 1.0)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
