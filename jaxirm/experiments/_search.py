"""Hyperparameter search on a registered experiment: DomainBed's protocol over configurations and steps."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxirm import sweep
from jaxirm.datasets import to_batch
from jaxirm.experiments._plan import _method_config, plan
from jaxirm.experiments._registry import Experiment, get
from jaxirm.experiments._store import append_rows, complete_sets, drop_torn_tail, lock, read_rows
from jaxirm.experiments._tables import _jsonable
from jaxirm.provenance import fingerprint, provenance, stale_reasons
from jaxirm.search import SearchSpace
from jaxirm.selection import CONFIG_SELECTIONS, leave_one_env_out, select_config

__all__ = ["search", "read_search", "format_search"]

SEARCH = "search.jsonl"


def read_search(out: str | os.PathLike) -> list[dict]:
    """The rows of ``out/search.jsonl`` (a torn last line is ignored)."""
    return read_rows(Path(out) / SEARCH)


def _num_train_envs(train) -> int:
    envs = np.asarray(train.envs)
    return len(np.unique(envs)) if np.issubdtype(envs.dtype, np.integer) else 0


def search(
    experiment: str | Experiment,
    *,
    trials: int = 8,
    methods: Sequence[str] | None = None,
    seeds: int | None = None,
    steps: int | None = None,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    log: Any = None,
    reuse_stale: bool = False,
    data_dir: str | os.PathLike | None = None,
) -> list[dict]:
    """Random search over an experiment's registered search space, with DomainBed's three selections.

    Per method, ``trials`` points are drawn from ``Experiment.search_space`` (the names the method registers,
    or all its solver accepts if it registers none; point 0 is the registered configuration) and run with
    every seed as *one* `jaxirm.sweep`. Then
    `jaxirm.selection.select_config` chooses a configuration (and a step per run) by training-environment
    validation (``train-val``, when the experiment has held-out training rows), leave-one-environment-out
    (when the training data hold >= 3 environments: E more sweeps) and the test-set oracle (an upper bound,
    labelled as such). ``out/search.jsonl`` gets one row per method × selection (configuration, validation
    score, test mean ± std over seeds, every point's score, provenance) and ``out/search.md`` the tables.
    A method whose rows are there for the same trials, seeds, steps, search seed and provenance is reused.

    Args:
      experiment: a registered name or an `Experiment` with a ``search_space``.
      trials: points per method (>= 1).
      methods: restrict to these methods.
      seeds: seeds per point (default: the experiment's).
      steps: steps per run (default: the experiment's).
      out: output folder (default ``results/<name>/search``).
      seed: the search's seed (the sampled points depend only on it and the space).
      log: a callable taking one line (default: stderr on a terminal).
      reuse_stale: keep stored rows whose provenance differs.
      data_dir: the folder of user-supplied data files (as for `jaxirm.experiments.reproduce`).

    Returns:
      The rows written or reused (one per method × selection).

    Raises:
      ValueError: no registered search space, bad sizes, ``out`` not writable.
      OutLocked: (a RuntimeError) another run holds ``out``'s lock.
    """
    exp = get(experiment) if isinstance(experiment, str) else experiment
    space: SearchSpace | None = exp.search_space
    if space is None:
        raise ValueError(f"experiment {exp.name!r} registers no search space (Experiment.search_space)")
    trials = int(trials)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    run = plan(
        exp,
        out=Path("results") / exp.name / "search" if out is None else out,
        seeds=seeds,
        steps=steps,
        methods=methods,
        log=log,
        data_dir=data_dir,
    )
    out, log, num_seeds, num_steps = run.out, run.log, run.seeds, run.steps
    path = out / SEARCH
    eval_every = min(exp.eval_every, num_steps)
    settings = {"trials": trials, "seeds": num_seeds, "steps": num_steps, "search_seed": int(seed)}
    written = []
    with lock(out):
        drop_torn_tail(path)
        data = run.data()
        has_val = data[0][1] is not None
        num_envs = _num_train_envs(data[0][0])
        wanted = [
            s
            for s in CONFIG_SELECTIONS
            if (s != "train-val" or has_val) and (s != "leave-one-env-out" or num_envs >= 3)
        ]
        if num_envs < 3:
            log(f"{exp.name}: leave-one-env-out needs >= 3 training environments, the data hold {num_envs}")
        data_print = fingerprint([tuple(d) for d in data])
        stored = [r for r in read_search(out) if all(r.get(k) == v for k, v in settings.items())]
        complete, _ = complete_sets(stored, wanted)
        for index, method in enumerate(run.methods, start=1):
            head = f"[{index}/{len(run.methods)}] {method.name}"
            solver = run.solvers[method.name]
            # The names the method registers (ERM's solver accepts lam but registers none: no penalty), else
            # every name its solver accepts.
            names = [
                n
                for n in space.ranges
                if n in solver.defaults and (n in method.hparams or not method.hparams)
            ]
            if not names:
                log(f"{head}: none of its hyperparameters is in the space")
                continue
            sub = SearchSpace({n: space.ranges[n] for n in names})
            points = [
                {**_jsonable(method.hparams), **p} for p in sub.sample(trials, seed, base=method.hparams)
            ]
            prov = provenance(
                data_print,
                {**_method_config(method, run, eval_every, hparams={}), "points": points},
            )
            old = complete.get((method.name, int(seed)))
            if old is not None:
                reasons = stale_reasons(old[0].get("provenance"), prov)
                if not reasons or reuse_stale:
                    log(f"{head}: search already in {path}")
                    written += old
                    continue
                log(f"{head}: stored search is stale, rerunning: " + "; ".join(reasons))
            train = to_batch([d[0] for d in data], with_z=solver.needs_z)
            val = to_batch([d[1] for d in data], with_z=False) if has_val else None
            test = to_batch([d[2] for d in data], with_z=False)
            log(f"{head}: {trials} configurations × {num_seeds} seeds × {num_steps} steps ...")
            start = time.perf_counter()
            common = dict(
                seeds=list(range(num_seeds)),
                configs=points,
                eval_every=eval_every,
                metric=exp.metric,
                data_per_seed=True,
            )
            result = sweep(solver, train, num_steps, test=test, val=val, **common)
            held = (
                leave_one_env_out(solver, train, num_steps, **common)
                if "leave-one-env-out" in wanted
                else None
            )
            wall = time.perf_counter() - start
            run_id = uuid.uuid4().hex
            rows = []
            for selection in wanted:
                choice = select_config(result, selection, held_out=held)
                rows.append(
                    {
                        "experiment": exp.name,
                        "method": method.name,
                        "seed": int(seed),
                        **settings,
                        **choice.summary(),
                        "index": choice.index,
                        "registered": choice.index == 0,
                        "scores": [None if np.isnan(v) else float(v) for v in choice.scores],
                        "points": points,
                        "space": sub.describe(),
                        "metric": exp.metric,
                        "wall_s": round(wall, 3),
                        "run_id": run_id,
                        "provenance": prov,
                    }
                )
            append_rows(path, rows)
            written += rows
            log(
                f"    done in {wall:.1f} s"
                + (f" (incl. {len(held)} leave-one-env-out sweeps)" if held else "")
            )
        (out / "search.md").write_text(format_search(exp, written, wanted, settings, space, num_envs))
    return written


def format_search(
    exp: Experiment,
    rows: Sequence[dict],
    selections: Sequence[str],
    settings: dict,
    space: SearchSpace,
    num_envs: int,
) -> str:
    """The markdown of ``search.md``: per method, the configuration each selection picks and its numbers."""
    names = list(space.ranges)
    parts = [
        f"# {exp.name}: hyperparameter search",
        "",
        f"- {settings['trials']} configurations per method (point 0 = the registered one, the rest drawn "
        f"with search seed {settings['search_seed']}) × {settings['seeds']} seeds × "
        f"{settings['steps']} steps",
        "- space: " + ", ".join(f"{k} {v}" for k, v in space.describe().items()),
        "- a configuration is chosen by its validation score averaged over seeds (each run's step chosen by "
        "the same rule); its test numbers are the mean ± std over seeds",
        "- oracle = test-set selection: an upper bound, not a legitimate model selection",
    ]
    if "leave-one-env-out" not in selections:
        parts.append(f"- leave-one-env-out: n/a (needs >= 3 training environments, the data hold {num_envs})")
    header = ["method", "selection", *names, "val (selected by)", f"test mean ({exp.metric})", "test worst"]
    parts += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        label = r["selection"] + (" (test-set oracle)" if r["selection"] == "oracle" else "")
        label += " (registered)" if r.get("registered") else ""
        cells = [r["method"], label]
        cells += [f"{r['config'][n]:.4g}" if n in r["config"] else "—" for n in names]
        cells += [
            "(test)" if r["selection"] == "oracle" else f"{r['val']:.4f} ± {r['val_std']:.4f}",
            f"{r['test_mean']:.4f} ± {r['test_mean_std']:.4f}",
            f"{r['test_worst']:.4f} ± {r['test_worst_std']:.4f}",
        ]
        parts.append("| " + " | ".join(cells) + " |")
    return "\n".join(parts) + "\n"
