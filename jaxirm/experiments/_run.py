"""Running a registered experiment: each method's seeds as one sweep, results written as they come."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxirm.experiments._registry import Experiment, get
from jaxirm.experiments._store import (
    append_rows,
    complete_sets,
    drop_torn_tail,
    lock,
    partial_tag,
    rewrite_rows,
)
from jaxirm.experiments._tables import _jsonable, _write_tables, summarize, trajectories
from jaxirm.loops import SELECTIONS, sweep
from jaxirm.provenance import describe as describe_provenance
from jaxirm.provenance import fingerprint, provenance, stale_reasons
from jaxirm.solvers import Batch
from jaxirm.solvers._base import check_hparams

__all__ = ["reproduce", "read_results", "table_dir", "check_out_dir"]

RESULTS = "results.jsonl"


def _batch(data_list, with_z: bool) -> Batch:
    stack = lambda field: np.stack([getattr(d, field) for d in data_list])  # noqa: E731
    return Batch(x=stack("x"), y=stack("y"), envs=stack("envs"), z=stack("z") if with_z else None)


#: The fields every results row must hold, with their JSON types (numbers may be int or float).
_ROW_FIELDS = {
    "method": (str, "string"),
    "seed": (int, "integer"),
    "selection": (str, "string"),
    "test_mean": ((int, float), "number"),
    "test_worst": ((int, float), "number"),
    "diverged": (bool, "boolean"),
}


def _check_row(row: Any, where: str) -> dict:
    """A results row as `reproduce` writes it, else a `ValueError` naming ``where`` (file:line)."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a results row must be a JSON object, got a JSON {type(row).__name__}")
    for field, (kind, label) in _ROW_FIELDS.items():
        if field not in row:
            raise ValueError(f"{where}: the results row lacks the field {field!r}")
        value = row[field]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ValueError(f"{where}: field {field!r} must be a JSON {label}, got {value!r}")
    if row["seed"] < 0:
        raise ValueError(f"{where}: field 'seed' must be >= 0, got {row['seed']}")
    return row


def read_results(out: str | os.PathLike) -> list[dict]:
    """The rows of ``out/results.jsonl`` (an unfinished last line from a killed run is ignored).

    Raises:
      ValueError: a row (other than an unfinished last line) that is not JSON, not a JSON object, lacks
        one of the fields ``method``, ``seed``, ``selection``, ``test_mean``, ``test_worst``, ``diverged``,
        or holds a value of the wrong type there; the message names the file and the line number.
    """
    path = Path(out) / RESULTS
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # the torn last line of a run killed mid-write
                continue
            raise ValueError(f"{where}: not a JSON row ({err.msg})") from None
        rows.append(_check_row(row, where))
    return rows


def check_out_dir(out: str | os.PathLike) -> Path:
    """Creates the output directory ``out`` and checks that results can be written there.

    Called before anything is loaded or compiled, so a bad ``out`` fails at once instead of after the first
    method has trained.

    Raises:
      ValueError: ``out`` is a file, cannot be created, is not writable, or its ``results.jsonl`` is not a
        writable file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # the only portable writability test (root ignores modes)
            pass
    except OSError as err:
        raise ValueError(f"out {str(out)!r} is not a writable directory ({err.strerror or err})") from None
    path = out / RESULTS
    if path.exists() and not (path.is_file() and os.access(path, os.W_OK)):
        raise ValueError(f"out {str(out)!r}: {RESULTS} exists but is not a writable file")
    return out


def _progress_log(log: Any, progress: bool | None) -> Any:
    """``log``, else a printer to stderr when progress is shown (default: on an interactive terminal without
    ``CI``), else a no-op."""
    if log is not None:
        return log
    show = sys.stderr.isatty() and not os.environ.get("CI") if progress is None else progress
    return (lambda line: print(line, file=sys.stderr, flush=True)) if show else (lambda line: None)


def _check_steps(exp: Experiment, solvers: Mapping[str, Any], num_steps: int) -> None:
    """Refuses a run too short for a method (EIIL trains Φ only after its reference and inference phases)
    before anything is loaded or compiled."""
    for name, solver in solvers.items():
        need = int(getattr(solver, "min_steps", 1))
        if num_steps < need:
            raise ValueError(
                f"steps must be >= {need} for method {name!r} of {exp.name!r} (its first {need - 1} steps "
                f"do not train the model itself), got steps={num_steps}"
            )


def _is_current(exp: Experiment, num_steps: int, hparams: Mapping[str, dict]) -> Callable[[dict], bool]:
    """Whether a row counts for this run: experiment, steps and the method's hyperparameters all match, so
    changing a method's hyperparameters and rerunning into the same directory recomputes it."""

    def current(row: dict) -> bool:
        return (
            row.get("experiment") == exp.name
            and row.get("steps") == num_steps
            and row.get("hparams") == hparams.get(row.get("method"))
        )

    return current


def _overridden(exp: Experiment, chosen, solvers: dict, overrides: Mapping[str, float] | None) -> dict:
    """Each chosen method's hyperparameters with ``overrides`` applied where its solver accepts the name."""
    hparams = {m.name: _jsonable(m.hparams) for m in exp.methods}
    if not overrides:
        return hparams
    for name, value in overrides.items():
        # The methods that register the name (ERM's solver accepts lam but registers none: it has no
        # penalty), else every method whose solver accepts it.
        takers = [m for m in chosen if name in m.hparams and name in solvers[m.name].defaults]
        takers = takers or [m for m in chosen if name in solvers[m.name].defaults]
        if not takers:
            raise ValueError(
                f"--set {name}: no chosen method has a hyperparameter {name!r} (they accept "
                f"{sorted({k for m in chosen for k in solvers[m.name].defaults})})"
            )
        for m in takers:
            check_hparams(m.name, solvers[m.name].defaults, {name: value}, scalar=True)
            hparams[m.name] = _jsonable({**hparams[m.name], name: value})
    return hparams


def table_dir(
    experiment: str | Experiment,
    out: str | os.PathLike,
    *,
    seeds: int | None = None,
    steps: int | None = None,
    methods: Sequence[str] | None = None,
    overrides: Mapping[str, float] | None = None,
) -> Path:
    """Where `reproduce` writes the tables of a run: ``out`` for the full registered run, else
    ``out/partial/<tag>`` (a subset of methods, other seeds or steps, or overridden hyperparameters), so a
    partial run never replaces the full tables."""
    exp = get(experiment) if isinstance(experiment, str) else experiment
    tag = partial_tag(
        methods,
        [m.name for m in exp.methods],
        exp.seeds if seeds is None else int(seeds),
        exp.seeds,
        exp.num_steps if steps is None else int(steps),
        exp.num_steps,
        dict(overrides or {}),
    )
    return Path(out) if tag is None else Path(out) / "partial" / tag


def _method_config(method, solver, hparams: dict, num_steps: int, eval_every: int, metric: str) -> dict:
    """The full configuration of a method's runs (what a row's provenance records as ``method``)."""
    return {
        "name": method.name,
        "solver": solver.name,
        "hparams": _jsonable({**dict(solver.defaults), **hparams}),
        "steps": num_steps,
        "eval_every": eval_every,
        "metric": metric,
        "loss_kind": solver.loss_kind,
        "num_envs": solver.num_envs,
        "needs_z": solver.needs_z,
        "uses_envs": solver.uses_envs,
        "full_batch": solver.full_batch,
        "min_steps": solver.min_steps,
    }


def reproduce(
    experiment: str | Experiment,
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
    """Runs every method × seed of an experiment and writes its results, tables and plot.

    Each method's seeds run as one `jaxirm.sweep` (vmapped, one compile). After each method, its row sets
    (one row per selection for each seed, sharing a ``run_id``) are appended to ``out/results.jsonl`` with one
    atomic write and an fsync. Every row records its `jaxirm.provenance.provenance` (jaxirm version, git
    commit and dirty state, jax/jaxlib/optax/flax versions, backend, device kind, the seed's data fingerprint
    and the full method configuration).

    Rerunning into the same ``out`` reuses a (method, seed) only when its row set is *complete* (every
    selection present) for the same experiment, steps and hyperparameters, *and* its provenance matches;
    otherwise that seed is recomputed and the log says why (stale provenance, a torn tail). ``reuse_stale``
    keeps complete rows whose provenance differs. An advisory lock on ``out/.lock`` makes a second concurrent
    run into the same folder fail at once.

    Finally ``table.csv``, ``table.md`` (ours beside the paper's, over seeds 0 … seeds−1, with the rows'
    provenance) and ``plot.png`` are written to ``out`` for the full registered run, or to
    ``out/partial/<tag>/`` (`table_dir`) for a partial one (a subset of methods, other seeds or steps, or
    ``overrides``), which never replaces the full tables.

    Args:
      experiment: a registered name or an `Experiment`.
      seeds: number of seeds (default: the experiment's).
      steps: training steps per run (default: the experiment's).
      out: output directory (created).
      methods: restrict to these method names (default: all).
      progress: print progress lines (default: on an interactive terminal without ``CI``).
      plot: write ``plot.png`` (needs matplotlib).
      log: a callable taking one line of text for progress (default: print to stderr).
      on_progress: a callable ``(method, done, total)``, called when a method starts and when it ends, with
        the number of (method, seed) runs finished so far (those already in ``results.jsonl`` included) out
        of ``total`` = methods × seeds; e.g. for a progress bar (the ``jaxirm`` command draws one).
      overrides: ``{name: value}`` hyperparameters replacing the registered ones of every chosen method whose
        solver accepts the name (the rows then carry them, and the table gives no paper verdict).
      reuse_stale: reuse complete rows whose provenance differs from this run's (on purpose).
      checkpoints: save each run's final, train-val- and oracle-selected states with orbax under
        ``out/checkpoints/<method>/seed<k>/<selection>`` (`jaxirm.load` reads them back).

    Returns:
      The summary table (`summarize`).

    Raises:
      KeyError: unknown experiment or method name.
      ValueError: ``seeds`` or ``steps`` < 1, ``steps`` too few for a method (``Solver.min_steps``), or an
        override no chosen method accepts or out of range, raised before any data is loaded; ``out`` not a
        writable directory (`check_out_dir`) or a malformed ``results.jsonl`` row (`read_results`), both
        also before anything is computed.
      OutLocked: (a RuntimeError) another run holds ``out``'s lock.
    """
    exp = get(experiment) if isinstance(experiment, str) else experiment
    if exp.runner is not None:  # its own protocol, e.g. "sem" (coefficient errors): see Experiment.runner
        return exp.runner(
            exp,
            seeds=seeds,
            steps=steps,
            out=out,
            methods=methods,
            progress=progress,
            plot=plot,
            log=log,
            on_progress=on_progress,
            overrides=overrides,
            reuse_stale=reuse_stale,
            checkpoints=checkpoints,
        )
    num_seeds = exp.seeds if seeds is None else int(seeds)
    num_steps = exp.num_steps if steps is None else int(steps)
    if num_seeds < 1 or num_steps < 1:
        raise ValueError(f"seeds and steps must be >= 1, got seeds={num_seeds}, steps={num_steps}")
    chosen = exp.methods if methods is None else tuple(exp.method(m) for m in methods)
    out = check_out_dir(out)
    path = out / RESULTS
    log = _progress_log(log, progress)
    solvers = {m.name: m.build() for m in chosen}
    _check_steps(exp, solvers, num_steps)
    hparams = _overridden(exp, chosen, solvers, overrides)
    eval_every = min(exp.eval_every, num_steps)
    tables = table_dir(exp, out, seeds=num_seeds, steps=num_steps, methods=methods, overrides=overrides)
    current = _is_current(exp, num_steps, hparams)

    with lock(out):
        existing = read_results(out)  # raises on a malformed row before anything is computed
        dropped = drop_torn_tail(path)
        if dropped:
            log(f"{path}: dropped a torn last line ({dropped} bytes) of a run killed mid-write")
        data = [exp.load(s) for s in range(num_seeds)]
        has_val = data[0][1] is not None
        wanted = [s for s in SELECTIONS if s in exp.selections and (s != "train-val" or has_val)]
        prints = [fingerprint(tuple(data[s])) for s in range(num_seeds)]
        configs = {
            m.name: _method_config(m, solvers[m.name], hparams[m.name], num_steps, eval_every, exp.metric)
            for m in chosen
        }
        # A row set is written with one append, so an incomplete one is the torn tail of a killed run: drop
        # its surviving rows (rewriting the file atomically); its run is recomputed below.
        ours = [r for r in existing if r.get("experiment") == exp.name and r.get("run_id")]
        _, incomplete = complete_sets(ours, wanted)
        if incomplete:
            broken = {id(r) for members in incomplete for r in members}
            for members in incomplete:
                r, got = members[0], sorted({m["selection"] for m in members})
                log(f"{r['method']} seed {r['seed']}: incomplete row set ({got} of {wanted}) dropped")
            rewrite_rows(path, [r for r in existing if id(r) not in broken])
            existing = [r for r in existing if id(r) not in broken]
        complete, _ = complete_sets([r for r in existing if current(r)], wanted)

        def fresh(method: str, seed: int) -> bool:
            members = complete.get((method, seed))
            if members is None:
                return False
            want = provenance(prints[seed], configs[method])
            return reuse_stale or not stale_reasons(members[0].get("provenance"), want)

        tick = on_progress or (lambda method, done, total: None)
        total_runs, runs_done = len(chosen) * num_seeds, 0
        ckpt_seconds, ckpt_count = 0.0, 0
        for index, method in enumerate(chosen, start=1):
            todo = [s for s in range(num_seeds) if not fresh(method.name, s)]
            stale = {}
            for s in todo:
                if (method.name, s) in complete:
                    old = complete[(method.name, s)][0].get("provenance")
                    for reason in stale_reasons(old, provenance(prints[s], configs[method.name])):
                        stale[reason] = stale.get(reason, 0) + 1
            if stale:
                why = "; ".join(f"{k} ({n} seeds)" for k, n in stale.items())
                log(
                    f"[{index}/{len(chosen)}] {method.name}: stored rows are stale, rerunning: {why} "
                    "(--reuse-stale keeps them)"
                )
            tick(method.name, runs_done + num_seeds - len(todo), total_runs)
            runs_done += num_seeds
            if not todo:
                log(f"[{index}/{len(chosen)}] {method.name}: all {num_seeds} seeds already in {path}")
                continue
            solver = solvers[method.name]
            train = _batch([data[s][0] for s in todo], solver.needs_z)
            val = _batch([data[s][1] for s in todo], False) if has_val else None
            test = _batch([data[s][2] for s in todo], False)
            log(f"[{index}/{len(chosen)}] {method.name}: {len(todo)} seeds × {num_steps} steps ...")
            start = time.perf_counter()
            result = sweep(
                solver,
                train,
                num_steps,
                seeds=todo,
                grid={k: [v] for k, v in hparams[method.name].items()},
                test=test,
                val=val,
                eval_every=eval_every,
                metric=exp.metric,
                data_per_seed=True,
                keep_selected=checkpoints,
            )
            wall = time.perf_counter() - start
            rows = []
            for i, config in enumerate(result.configs):
                seed = config["seed"]
                run_id = uuid.uuid4().hex
                prov = provenance(prints[seed], configs[method.name])
                saved = {}
                if checkpoints:
                    t0 = time.perf_counter()
                    saved = _save_checkpoints(exp, out, method.name, seed, i, result, hparams, prov, wanted)
                    ckpt_seconds += time.perf_counter() - t0
                    ckpt_count += len(saved)
                for selection in wanted:
                    if selection not in result.selection:
                        continue
                    sel = result.selection[selection]
                    extra = {}
                    if selection == "final" and exp.trajectories:
                        extra["trajectory"] = {
                            "step": [int(t) for t in result.history["step"][i]],
                            **{k: [float(v) for v in result.history[k][i]] for k in exp.trajectories},
                        }
                    if "val" in sel:
                        extra["val"] = float(sel["val"][i])
                    if selection in saved:
                        extra["checkpoint"] = saved[selection]
                    rows.append(
                        {
                            "experiment": exp.name,
                            "method": method.name,
                            "seed": seed,
                            "selection": selection,
                            "test_mean": float(sel["test_mean"][i]),
                            "test_worst": float(sel["test_worst"][i]),
                            "step": int(sel["step"][i]),
                            "diverged": bool(result.diverged[i]),
                            "steps": num_steps,
                            "hparams": hparams[method.name],
                            "metric": exp.metric,
                            "sweep_wall_s": round(wall, 3),
                            "run_id": run_id,
                            "provenance": prov,
                            **extra,
                        }
                    )
            append_rows(path, rows)
            tick(method.name, runs_done, total_runs)
            final = result.selection["final"]
            log(
                f"    done in {wall:.1f} s: final mean {np.mean(final['test_mean']):.4f}, "
                f"worst {np.mean(final['test_worst']):.4f}"
            )
        if checkpoints:
            log(f"checkpoints: {ckpt_count} saved under {out / 'checkpoints'} in {ckpt_seconds:.1f} s")

        # The summary covers the requested seeds (rows of other seeds, hyperparameters or provenance in the
        # same directory are kept in results.jsonl but left out of the tables); one complete row set per
        # (method, seed), the latest. A partial run tabulates only its own methods.
        complete, _ = complete_sets([r for r in read_results(out) if current(r)], wanted)
        names = {m.name for m in (exp.methods if tables == out else chosen)}
        rows = [
            r
            for (name, seed), members in complete.items()
            if name in names and seed < num_seeds and (name not in configs or fresh(name, seed))
            for r in members
        ]
        table = summarize(exp, rows)
        tables.mkdir(parents=True, exist_ok=True)
        _write_tables(exp, tables, table, provenance_lines=describe_provenance(rows))
        if tables != out:
            log(f"partial run: tables in {tables} (the full tables in {out} are left as they are)")
        if plot and table:
            from jaxirm.plotting import plot_results

            fig = plot_results(exp, table, trajectories=trajectories(exp, rows) or None)
            fig.savefig(tables / "plot.png", dpi=120, bbox_inches="tight")
    return table


def _save_checkpoints(exp, out: Path, method: str, seed: int, i: int, result, hparams, prov, wanted) -> dict:
    """Saves run ``i``'s final and selected states; returns ``{selection: path relative to out}``."""
    import jax

    from jaxirm.checkpoint import save

    states = {"final": result.state, **(result.selected_states or {})}
    saved = {}
    for selection in wanted:
        if selection not in states or selection not in result.selection:
            continue
        one = jax.tree_util.tree_map(lambda a: a[i], states[selection])
        rel = Path("checkpoints") / method / f"seed{seed}" / selection
        meta = {
            "experiment": exp.name,
            "method": method,
            "seed": seed,
            "selection": selection,
            "step": int(result.selection[selection]["step"][i]),
            "hparams": hparams[method],
            "metric": exp.metric,
            "provenance": prov,
        }
        save(out / rel, one, meta)
        saved[selection] = str(rel)
    return saved
