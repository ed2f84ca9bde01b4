"""Plots of reproduction results (matplotlib, Agg backend; figures are returned, never shown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plot_results"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install -e ".[cli]" in the jaxirm clone') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_results(
    experiment: Any,
    table: Sequence[dict],
    selection: str = "final",
    trajectories: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Bar chart of every method's mean and worst test metric (± std over seeds), beside the paper's.

    Args:
      experiment: the `jaxirm.experiments.Experiment` (for its name, metric and ceiling).
      table: rows from `jaxirm.experiments.summarize`.
      selection: which model selection to plot.
      trajectories: ``{method: {"step": [T], metric: [T]}}`` (`jaxirm.experiments.trajectories`); each
        metric gets a second panel with one line per method over the training steps (log scale when
        positive).

    Returns:
      A matplotlib ``Figure`` (save it with ``fig.savefig``).

    Raises:
      ImportError: matplotlib is not installed.
    """
    plt = _pyplot()
    rows = [e for e in table if e["selection"] == selection]
    keys = sorted({k for t in (trajectories or {}).values() for k in t if k != "step"})
    width_in = max(6.0, 0.9 * len(rows) + 2)
    if keys:
        fig, axes = plt.subplots(1, 1 + len(keys), figsize=(width_in + 5.0 * len(keys), 4.2))
        ax = axes[0]
        for key, tax in zip(keys, axes[1:], strict=True):
            _plot_trajectories(tax, trajectories, key)
    else:
        fig, ax = plt.subplots(figsize=(width_in, 4.2))
    xs = range(len(rows))
    width = 0.2
    paper = [(x, e) for x, e in zip(xs, rows, strict=True) if "paper_mean" in e]
    bars = (
        (-1.5, "ours", "", "mean", "#4c72b0", list(zip(xs, rows, strict=True))),
        (-0.5, "ours", "", "worst", "#dd8452", list(zip(xs, rows, strict=True))),
        (0.5, "paper", "paper_", "mean", "#8fa8d6", paper),
        (1.5, "paper", "paper_", "worst", "#f0b890", paper),
    )
    for offset, who, prefix, key, color, points in bars:
        if points:
            ax.bar(
                [x + offset * width for x, _ in points],
                [e[f"{prefix}{key}"] for _, e in points],
                width,
                yerr=[e[f"{prefix}{key}_std"] for _, e in points],
                label=f"{who}: {key}",
                color=color,
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


def _plot_trajectories(ax: Any, trajectories: Mapping[str, Mapping[str, Any]], key: str) -> None:
    """One line per method: the mean over seeds of a training metric against the step."""
    positive = True
    for method, traj in trajectories.items():
        if key not in traj:
            continue
        values = [float(v) for v in traj[key]]
        positive = positive and all(v > 0 for v in values[-len(values) // 2 :])
        ax.plot(traj["step"], values, label=method, linewidth=1.2)
    label = "A·λ_Ψ (effective penalty weight)" if key == "lam" else key
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    if positive:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title(f"{label}, mean over seeds")
    ax.legend(fontsize=7)
