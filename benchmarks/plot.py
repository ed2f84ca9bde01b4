"""Draws the benchmark figure of the docs from the harnesses' JSON: every goal against its threshold.

Usage::

    python -m benchmarks.plot benchmarks/results/compare.json [more.json ...] --out docs/assets/benchmarks.png

Later files override the goals of earlier ones (so a rerun of some sections can be laid over a full run).
The figure shows each goal's measured value as a multiple of its threshold (log scale; right of the line =
goal met, whichever direction the goal points) and, when a ``benchmarks.env_scaling`` JSON is given, the
penalty's cost against the number of environments.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_goals(paths: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The goals of ``benchmarks.compare`` JSON files (later files win) and env-scaling cases, if any.

    Args:
      paths: JSON files written by ``benchmarks.compare`` or ``benchmarks.env_scaling``.

    Returns:
      ``(goals, env_cases)``: goal dicts (name, value, op, threshold, unit, passed, section) in first-seen
      order, and the ``results`` rows of the last env-scaling file (empty without one).

    Raises:
      FileNotFoundError: a path does not exist.
      ValueError: a file is not one of the two benchmarks' JSON.
    """
    goals: dict[str, dict[str, Any]] = {}
    env_cases: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data.get("benchmark") == "env_scaling":
            env_cases = list(data["results"])
            continue
        if "goals" not in data:
            raise ValueError(f"{path}: not a benchmarks.compare or benchmarks.env_scaling JSON (no 'goals')")
        for goal in data["goals"]:
            goals[goal["name"]] = goal
    return list(goals.values()), env_cases


def goal_ratio(goal: dict[str, Any]) -> float:
    """How far a goal is met: > 1 met, < 1 missed, whichever direction the goal points."""
    value, threshold = float(goal["value"]), float(goal["threshold"])
    if goal["op"] == ">=":
        return value / threshold
    return threshold / value if value > 0 else math.inf


def plot(goals: Sequence[dict[str, Any]], env_cases: Sequence[dict[str, Any]], title: str = "") -> Any:
    """A matplotlib figure: goal ratios (and the environment-scaling curve when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if env_cases else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels + 1, 0.45 * len(goals) + 1.8), squeeze=False)
    ax = axes[0, 0]
    ratios = [goal_ratio(g) for g in goals]
    labels = [
        f"{g['section']}: {g['name']}\n({g['value']:.3g}{g.get('unit', '')} vs {g['op']} {g['threshold']:g})"
        for g in goals
    ]
    colours = ["tab:green" if r >= 1 else "tab:red" for r in ratios]
    ypos = list(range(len(goals)))[::-1]
    ax.barh(ypos, ratios, color=colours)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    lo = min(0.25, min(ratios) / 1.2)
    hi = max(4.0, max(r for r in ratios if math.isfinite(r)) * 1.2)
    ticks = [t for t in (0.03, 0.1, 0.25, 0.5, 1, 2, 4, 10, 30, 100) if lo <= t <= hi]
    ax.set_xlim(lo, hi)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(ypos, labels, fontsize=7)
    ax.set_xlabel("measured / goal (> 1: met)")
    ax.set_title(title or "jaxirm benchmark goals", fontsize=9)
    if env_cases:
        ax2 = axes[0, 1]
        for form in sorted({c["formulation"] for c in env_cases}):
            rows = sorted((c for c in env_cases if c["formulation"] == form), key=lambda c: c["num_envs"])
            ax2.plot([c["num_envs"] for c in rows], [c["median_ms"] for c in rows], "o-", label=form)
        ax2.set_xscale("log", base=2)
        ax2.set_yscale("log")
        ax2.set_xlabel("environments E")
        ax2.set_ylabel("value + gradient of the penalty, ms (median)")
        ax2.set_title("cost vs number of environments", fontsize=9)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="JSON files of benchmarks.compare / benchmarks.env_scaling")
    parser.add_argument("--out", default="docs/assets/benchmarks.png", help="PNG to write")
    parser.add_argument("--title", default="", help="figure title")
    args = parser.parse_args(argv)
    goals, env_cases = load_goals(args.json)
    fig = plot(goals, env_cases, args.title)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130, bbox_inches="tight")
    print(f"wrote {args.out} ({len(goals)} goals)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
