"""The summary tables of reproduced experiments: mean ± std over seeds beside the papers' numbers, with
two-sided verdicts, and the files ``table.md``/``table.csv`` written from them."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxirm.experiments._registry import Experiment
from jaxirm.selection import SELECTIONS
from jaxirm.selection import describe as describe_selection

__all__ = ["summarize", "format_table", "verdict_counts", "verdict_line", "trajectories", "NOT_REGISTERED"]


def _jsonable(hparams) -> dict:
    """Hyperparameters as they read back from JSON (floats), so rows compare equal across runs."""
    return json.loads(json.dumps({k: float(v) for k, v in dict(hparams).items()}))


def _verdict(ours: float, paper: float, std: float, metric: str) -> str:
    """Two-sided agreement with a published number: ``agrees`` within two of the paper's standard deviations,
    else the direction and the signed difference (``above``/``below`` for accuracy; ``better``/``worse`` for
    MSE, where lower is better)."""
    diff = ours - paper
    if abs(diff) <= 2 * std:
        return "agrees"
    if metric == "mse":
        word = "better" if diff < 0 else "worse"
    else:
        word = "above" if diff > 0 else "below"
    return f"{word} ({diff:+.4f})" if metric != "mse" or abs(diff) < 10 else f"{word} ({diff:+.4g})"


NOT_REGISTERED = "n/a (not the registered protocol)"
"""The verdict of a row that did not run the experiment's registered seeds, steps and hyperparameters."""


def _registered(exp: Experiment, method, rows: Sequence[dict]) -> bool:
    """Whether ``rows`` (one method, one selection) are exactly the registered protocol: the experiment's
    seeds 0 … seeds−1, its number of steps and the method's registered hyperparameters."""
    seeds = sorted(r.get("seed") for r in rows)
    return (
        seeds == list(range(exp.seeds))
        and all(r.get("steps") == exp.num_steps for r in rows)
        and all(r.get("hparams") == _jsonable(method.hparams) for r in rows)
    )


def summarize(exp: Experiment, rows: Sequence[dict]) -> list[dict]:
    """Mean ± std over seeds per (method, selection), beside the paper's entry and the ceiling.

    Where the paper has an entry, ``verdict_mean`` and ``verdict_worst`` compare ours with it two-sidedly:
    ``"agrees"`` when |ours − paper| ≤ 2 · paper std, else ``"above (+0.087)"`` / ``"below (-0.034)"`` (MSE:
    ``"better"`` / ``"worse"``, lower being better). A verdict is given only when the rows are the registered
    protocol (the experiment's seeds, steps and every method's registered hyperparameters; ``registered``
    says whether they are); otherwise it reads ``"n/a (not the registered protocol)"``.

    Args:
      exp: the experiment.
      rows: result rows (`read_results`).

    Returns:
      One dict per method × selection, in the experiment's method order.
    """
    table = []
    for method in exp.methods:
        for selection in SELECTIONS:
            sel = [r for r in rows if r["method"] == method.name and r["selection"] == selection]
            if not sel:
                continue
            mean = np.array([r["test_mean"] for r in sel])
            worst = np.array([r["test_worst"] for r in sel])
            entry = {
                "method": method.name,
                "selection": selection,
                "seeds": len(sel),
                "mean": float(mean.mean()),
                "mean_std": float(mean.std()),
                "worst": float(worst.mean()),
                "worst_std": float(worst.std()),
                "diverged": int(sum(bool(r["diverged"]) for r in sel)),
                "registered": _registered(exp, method, sel),
            }
            if exp.ceiling is not None:
                # How far the worst environment is from the best achievable value (positive = short of it).
                gap = worst.mean() - exp.ceiling if exp.metric == "mse" else exp.ceiling - worst.mean()
                entry["ceiling_gap_worst"] = float(gap)
            if method.paper is not None:
                p = method.paper
                entry.update(
                    paper_mean=p.mean,
                    paper_mean_std=p.mean_std,
                    paper_worst=p.worst,
                    paper_worst_std=p.worst_std,
                )
                if entry["registered"]:
                    entry["verdict_mean"] = _verdict(entry["mean"], p.mean, p.mean_std, exp.metric)
                    entry["verdict_worst"] = _verdict(entry["worst"], p.worst, p.worst_std, exp.metric)
                else:
                    entry["verdict_mean"] = entry["verdict_worst"] = NOT_REGISTERED
            table.append(entry)
    return table


def verdict_counts(table: Sequence[dict]) -> dict[str, int]:
    """How many verdicts of a summary table (mean and worst of every row with a paper entry) agree, are
    above/better, are below/worse, or are not given (``"n/a"``: not the registered protocol)."""
    counts = {"agrees": 0, "above": 0, "below": 0, "better": 0, "worse": 0, "n/a": 0}
    for e in table:
        for key in ("verdict_mean", "verdict_worst"):
            if key in e:
                counts[e[key].split(" ")[0]] += 1
    return counts


def verdict_line(exp: Experiment, table: Sequence[dict]) -> str:
    """One line: the experiment's verdict counts over every selection (mean and worst are counted apart)."""
    c = verdict_counts(table)
    total = sum(c.values())
    if total == 0:
        return f"{exp.name}: no published numbers to compare with"
    if c["n/a"] == total:
        return f"{exp.name}: {total} comparisons with the paper, none given: not the registered protocol"
    up, down = ("better", "worse") if exp.metric == "mse" else ("above", "below")
    parts = [f"{c['agrees']} agree", f"{c[up]} {up}", f"{c[down]} {down}"]
    if c["n/a"]:
        parts.append(f"{c['n/a']} n/a (not the registered protocol)")
    return (
        f"{exp.name}: {total} comparisons with the paper (mean and worst × method × selection): "
        + ", ".join(parts)
    )


def trajectories(exp: Experiment, rows: Sequence[dict]) -> dict[str, dict[str, np.ndarray]]:
    """The mean over seeds of each recorded training metric (``Experiment.trajectories``) per method.

    Args:
      exp: the experiment.
      rows: result rows (`read_results`); the ``final`` rows carry the trajectories.

    Returns:
      ``{method: {"step": [T], metric: [T], ...}}`` for the methods whose rows have trajectories.
    """
    out = {}
    for method in exp.methods:
        runs = [
            r["trajectory"]
            for r in rows
            if r.get("method") == method.name and r.get("selection") == "final" and "trajectory" in r
        ]
        if not runs or any(run["step"] != runs[0]["step"] for run in runs):
            continue
        out[method.name] = {"step": np.asarray(runs[0]["step"])}
        for key in exp.trajectories:
            out[method.name][key] = np.mean([run[key] for run in runs], axis=0)
    return out


def format_table(exp: Experiment, table: Sequence[dict], selection: str) -> str:
    """A markdown table of one selection: ours (mean ± std) beside the paper's, with the two verdicts.

    The paper and verdict columns appear only when some method has a published entry, the ceiling column
    only when the experiment has a ceiling.
    """
    rows = [e for e in table if e["selection"] == selection]
    with_paper = any("paper_mean" in e for e in rows)
    with_gap = any("ceiling_gap_worst" in e for e in rows)
    header = ["method", "mean", "worst"]
    header += ["paper mean", "paper worst", "verdict (mean)", "verdict (worst)"] if with_paper else []
    header += ["gap to ceiling (worst)"] if with_gap else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in rows:
        flag = f" ({e['diverged']} diverged)" if e["diverged"] else ""
        cells = [
            f"{e['method']}{flag}",
            f"{e['mean']:.4f} ± {e['mean_std']:.4f}",
            f"{e['worst']:.4f} ± {e['worst_std']:.4f}",
        ]
        if with_paper:
            has = "paper_mean" in e
            cells += [
                f"{e['paper_mean']:.4f} ± {e['paper_mean_std']:.4f}" if has else "—",
                f"{e['paper_worst']:.4f} ± {e['paper_worst_std']:.4f}" if has else "—",
                e.get("verdict_mean", "—"),
                e.get("verdict_worst", "—"),
            ]
        if with_gap:
            cells.append(f"{e['ceiling_gap_worst']:+.4f}" if "ceiling_gap_worst" in e else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_tables(
    exp: Experiment,
    out: Path,
    table: Sequence[dict],
    provenance_lines: Sequence[str] = (),
    *,
    fields: Sequence[str] | None = None,
    body: str | None = None,
) -> str:
    """Writes ``table.csv`` (the columns ``fields``, default all) and ``table.md`` (the experiment's name,
    description and notes, then ``body``, default the verdicts, provenance and one table per selection);
    returns the markdown."""
    if fields is None:
        fields = sorted({k for e in table for k in e}, key=lambda k: (k not in ("method", "selection"), k))
    with (out / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    parts = [f"# {exp.name}", "", exp.description, ""]
    parts += [f"- {note}" for note in exp.notes]
    parts += _summary_lines(exp, table, provenance_lines) if body is None else ["", body]
    text = "\n".join(parts) + "\n"
    (out / "table.md").write_text(text)
    return text


def _summary_lines(exp: Experiment, table: Sequence[dict], provenance_lines: Sequence[str]) -> list[str]:
    """The verdict and provenance notes, then one markdown table per selection."""
    parts = []
    if any("paper_mean" in e for e in table):
        up, down = ("better", "worse") if exp.metric == "mse" else ("above", "below")
        parts.append(
            f"- verdict: `agrees` when |ours − paper| ≤ 2 × the paper's std, else `{up}`/`{down}` with the "
            "signed difference; given only for the registered protocol (the experiment's seeds, steps and "
            "hyperparameters), `n/a` otherwise"
        )
        parts.append(f"- {verdict_line(exp, table)}")
    # Which code, libraries and device produced the rows (details per row in results.jsonl "provenance").
    parts += [f"- provenance: {line}" for line in provenance_lines]
    for selection in SELECTIONS:
        what = describe_selection(selection, exp.metric)
        if any(e["selection"] == selection for e in table):
            parts += ["", f"## Selection: {selection} ({what})", "", format_table(exp, table, selection)]
    return parts
