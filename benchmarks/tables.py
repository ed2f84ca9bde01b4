"""Every registered table, timed: `jaxirm.experiments.reproduce` of each experiment in one process, on the
device JAX finds (the prepared script for an accelerator).

Usage::

    python -m benchmarks.tables                                  # every table of TABLES, registered protocol
    python -m benchmarks.tables --only simulation adult          # some of them
    python -m benchmarks.tables --data-dir ../shared/data        # where the user-supplied data files live
    python -m benchmarks.tables --docs docs/benchmarks.md        # also write the timing table into the page
    python -m benchmarks.tables --smoke                          # 1 seed, 50 steps, the methods that fit (CI)

Each experiment's results go to ``OUT/<name>/`` as `jaxirm reproduce` writes them, so its tables can be read
beside the timings. An experiment whose data are not installed is reported as skipped with the reason, not
as a failure. Per method, the wall time of its sweep (compilation included) comes from the ``sweep_wall_s``
of its results rows; the experiment's wall time also counts loading the data and writing the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import jax

from jaxirm import experiments

#: The registered tables of the papers and of the ablations, in the order they are run.
TABLES = (
    "simulation",
    "ood-tv-ablation",
    "eiil-control",
    "corrupted-env",
    "sem",
    "adult",
    "house",
    "cmnist",
    "cmnist-full",
)

_BEGIN, _END = "<!-- benchmarks.tables: begin -->", "<!-- benchmarks.tables: end -->"


def _methods_that_fit(exp: experiments.Experiment, steps: int | None) -> list[str] | None:
    """With a short ``steps``, the methods whose solver trains at all in that many steps (not EIIL's)."""
    if steps is None:
        return None
    return [m.name for m in exp.methods if m.build().min_steps <= steps]


def run_table(name: str, out: Path, *, seeds: int | None, steps: int | None, data_dir: str | None) -> dict:
    """Reproduces one registered experiment into ``out/name`` and returns its timings.

    Returns:
      ``{"experiment", "status" ("done" | "skipped"), "reason", "wall_s", "seeds", "steps", "methods":
      {method: sweep wall s}}``.
    """
    exp = experiments.get(name)
    record = {"experiment": name, "seeds": seeds or exp.seeds, "steps": steps or exp.num_steps}
    methods = _methods_that_fit(exp, steps)
    start = time.perf_counter()
    try:
        experiments.reproduce(
            exp,
            seeds=seeds,
            steps=steps,
            out=out / name,
            methods=methods,
            plot=False,
            progress=False,
            data_dir=data_dir,
        )
    except (ImportError, FileNotFoundError) as err:  # data not installed / not found
        return {**record, "status": "skipped", "reason": str(err).splitlines()[0], "methods": {}}
    wall = time.perf_counter() - start
    rows = experiments.read_results(out / name)
    per_method = {}
    for row in rows:
        if "sweep_wall_s" in row:
            per_method.setdefault(row["method"], row["sweep_wall_s"])
    return {**record, "status": "done", "reason": "", "wall_s": wall, "methods": per_method}


def markdown(results: Sequence[dict], device: str) -> str:
    """The timing table: one row per experiment, with its slowest method."""
    lines = [
        f"Every registered table on {device} (jax {jax.__version__}), `python -m benchmarks.tables`:",
        "",
        "| experiment | seeds × steps | wall s | methods | slowest method (s, incl. compile) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r["status"] != "done":
            lines.append(f"| {r['experiment']} | — | skipped | — | {r['reason']} |")
            continue
        slow = max(r["methods"].items(), key=lambda kv: kv[1], default=("—", float("nan")))
        lines.append(
            f"| {r['experiment']} | {r['seeds']} × {r['steps']} | {r['wall_s']:.1f} | {len(r['methods'])} "
            f"| {slow[0]} ({slow[1]:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def write_docs(path: Path, table: str) -> None:
    """Puts ``table`` between the page's markers (appending a section with them the first time)."""
    text = path.read_text() if path.exists() else ""
    block = f"{_BEGIN}\n{table}{_END}"
    if _BEGIN in text and _END in text:
        head, rest = text.split(_BEGIN, 1)
        text = head + block + rest.split(_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Every table, timed\n\n" + block + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=TABLES, help="experiments to run (default: all)")
    parser.add_argument("--out", default="benchmarks/results/tables", help="results folder")
    parser.add_argument("--seeds", type=int, help="seeds per method (default: each experiment's)")
    parser.add_argument("--steps", type=int, help="steps per run (default: each experiment's)")
    parser.add_argument("--data-dir", help="folder of user-supplied data files (default: $JAXIRM_DATA)")
    parser.add_argument("--docs", help="also write the timing table into this markdown page")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 50 steps (seconds per table)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.steps = 1, 50
    out = Path(args.out)
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()}, {jax.device_count()} device(s))"
    results = []
    for name in args.only or TABLES:
        result = run_table(name, out, seeds=args.seeds, steps=args.steps, data_dir=args.data_dir)
        results.append(result)
        shown = f"{result['wall_s']:.1f} s" if result["status"] == "done" else f"skipped: {result['reason']}"
        print(f"{name}: {shown}", flush=True)
    table = markdown(results, device)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.json").write_text(json.dumps({"device": device, "results": results}, indent=2))
    if args.docs:
        write_docs(Path(args.docs), table)
        print(f"wrote the table into {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
