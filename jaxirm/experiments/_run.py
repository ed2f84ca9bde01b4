"""Running a registered experiment: each method's seeds as one sweep, results written as they come."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxirm._sweep import Prepared, collect, launch, prepare
from jaxirm.datasets import to_batch
from jaxirm.experiments._ahead import CompileAhead, program_store
from jaxirm.experiments._plan import Run, _method_config, plan
from jaxirm.experiments._registry import Experiment, _is_builtin
from jaxirm.experiments._store import (
    append_rows,
    complete_sets,
    drop_torn_tail,
    lock,
    read_results,
    rewrite_rows,
)
from jaxirm.experiments._tables import _write_tables, summarize, trajectories
from jaxirm.provenance import describe as describe_provenance
from jaxirm.provenance import fingerprint, provenance, stale_reasons
from jaxirm.selection import SELECTIONS

__all__ = ["reproduce"]


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
    data_dir: str | os.PathLike | None = None,
) -> list[dict]:
    """Runs every method × seed of an experiment and writes its results, tables and plot.

    Each method's seeds run as one `jaxirm.sweep` (vmapped, one compile) on the seeds' data
    (`Experiment.data`: ``load`` and the validation split, made once). After each method, its row sets
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
      data_dir: the folder of user-supplied data files, for experiments whose loader reads them
        (`Experiment.needs_data_dir`; ``jaxirm reproduce --data-dir``); None: ``$JAXIRM_DATA``, else
        ``data/``.

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
    run = plan(
        experiment,
        out=out,
        seeds=seeds,
        steps=steps,
        methods=methods,
        progress=progress,
        log=log,
        on_progress=on_progress,
        overrides=overrides,
        plot=plot,
        reuse_stale=reuse_stale,
        checkpoints=checkpoints,
        data_dir=data_dir,
    )
    # An experiment with its own protocol, e.g. "sem" (coefficient errors): see Experiment.runner.
    if run.exp.runner is not None:
        return run.exp.runner(run)
    # Compiled programs are kept on disk only for jaxirm's own experiments, asked for by name: their solvers
    # are built by jaxirm code, which the programs' keys cover (`_programs`).
    return _reproduce(run, keep_programs=isinstance(experiment, str) and _is_builtin(experiment))


def _drop_incomplete(run: Run, existing: list[dict], wanted: Sequence[str]) -> list[dict]:
    """``existing`` without the incomplete row sets of this experiment, which are also dropped from the file.

    A row set is written with one append, so an incomplete one is the torn tail of a killed run; its run is
    recomputed.
    """
    ours = [r for r in existing if r.get("experiment") == run.exp.name and r.get("run_id")]
    _, incomplete = complete_sets(ours, wanted)
    if not incomplete:
        return existing
    broken = {id(r) for members in incomplete for r in members}
    for members in incomplete:
        r, got = members[0], sorted({m["selection"] for m in members})
        run.log(f"{r['method']} seed {r['seed']}: incomplete row set ({got} of {wanted}) dropped")
    kept = [r for r in existing if id(r) not in broken]
    rewrite_rows(run.results, kept)
    return kept


def _import_pyplot() -> None:
    """Imports matplotlib's pyplot for the plot at the end (the plot reports a missing matplotlib itself)."""
    from jaxirm.plotting import _pyplot

    try:
        _pyplot()
    except ImportError:
        pass


def _reproduce(run: Run, keep_programs: bool = False) -> list[dict]:
    """The standard protocol of `reproduce`: each method's missing seeds as one sweep, then the tables.

    ``keep_programs``: keep the compiled sweep programs on disk for the next run (`_programs`).
    """
    exp, path = run.exp, run.results
    eval_every = min(exp.eval_every, run.steps)
    with lock(run.out):
        existing = read_results(run.out)  # raises on a malformed row before anything is computed
        dropped = drop_torn_tail(path)
        if dropped:
            run.log(f"{path}: dropped a torn last line ({dropped} bytes) of a run killed mid-write")
        data = run.data()
        has_val = data[0][1] is not None
        wanted = [s for s in SELECTIONS if s in exp.selections and (s != "train-val" or has_val)]
        prints = [fingerprint(tuple(d)) for d in data]
        configs = {m.name: _method_config(m, run, eval_every) for m in run.methods}
        existing = _drop_incomplete(run, existing, wanted)
        complete, _ = complete_sets([r for r in existing if run.current(r)], wanted)

        def stale(method: str, seed: int) -> list[str]:
            """Why the stored complete rows of (method, seed) are stale (none: reusable)."""
            want = provenance(prints[seed], configs[method])
            return stale_reasons(complete[(method, seed)][0].get("provenance"), want)

        def fresh(method: str, seed: int) -> bool:
            return (method, seed) in complete and (run.reuse_stale or not stale(method, seed))

        todos = {m.name: [s for s in range(run.seeds) if not fresh(m.name, s)] for m in run.methods}

        store = program_store(run, keep_programs)
        # Each sweep is checked and laid out just before the previous one trains (while the devices are idle)
        # and handed to the compile-ahead thread once that one is launched; the thread makes its program while
        # that one trains. Only two sweeps' arrays are alive at a time. Without a compilation cache, each
        # sweep compiles when it runs.
        to_prepare = [m for m in run.methods if todos[m.name]]
        ahead = None
        if jax.config.jax_compilation_cache_dir and (len(to_prepare) > 1 or store is not None):
            ahead = CompileAhead(run, store)
        prepared: dict[str, Any] = {}

        def prepare_next() -> str | None:
            """Prepares the next method's sweep; returns its name (None: every sweep is prepared)."""
            if not to_prepare:
                return None
            method = to_prepare.pop(0)
            prepared[method.name] = prepare_method(run, method.name, data, todos[method.name])
            return method.name

        total_runs, runs_done = len(run.methods) * run.seeds, 0
        ckpt_seconds, ckpt_count = 0.0, 0
        for index, method in enumerate(run.methods, start=1):
            head = f"[{index}/{len(run.methods)}] {method.name}"
            todo = todos[method.name]
            why: dict[str, int] = {}
            for reason in (r for s in todo if (method.name, s) in complete for r in stale(method.name, s)):
                why[reason] = why.get(reason, 0) + 1
            if why:
                reasons = "; ".join(f"{k} ({n} seeds)" for k, n in why.items())
                run.log(f"{head}: stored rows are stale, rerunning: {reasons} (--reuse-stale keeps them)")
            run.tick(method.name, runs_done + run.seeds - len(todo), total_runs)
            runs_done += run.seeds
            if not todo:
                run.log(f"{head}: all {run.seeds} seeds already in {path}")
                continue
            run.log(f"{head}: {len(todo)} seeds × {run.steps} steps ...")
            start = time.perf_counter()
            if method.name not in prepared:  # the first method: nothing trains yet
                prepare_next()
                if ahead is not None:
                    ahead.submit(method.name, prepared[method.name])
            sweep = prepared.pop(method.name)
            slot = ahead.program(method.name) if ahead is not None else None
            program = slot.program if slot is not None else None
            # The next sweep is checked and laid out while the devices are idle, but handed to the thread only
            # once this one is launched: loading or tracing holds the interpreter for a while.
            following = prepare_next()
            try:
                outputs = launch(sweep, program)
            except TypeError:
                if program is None or not slot.loaded:
                    raise
                # a stored program that does not take these arguments (its key should have told): compile
                run.log(f"{head}: the stored compiled program does not fit; compiling it again")
                outputs = launch(sweep)
            if following is not None and ahead is not None:
                ahead.submit(following, prepared[following])
            elif following is None and run.plot:  # the last sweep trains: import pyplot meanwhile (0.4 s)
                threading.Thread(target=_import_pyplot, name="jaxirm-import-pyplot", daemon=True).start()
            result = collect(sweep, outputs)
            wall = time.perf_counter() - start
            rows = []
            for i, config in enumerate(result.configs):
                seed = config["seed"]
                prov = provenance(prints[seed], configs[method.name])
                saved = {}
                if run.checkpoints:
                    t0 = time.perf_counter()
                    saved = _save_checkpoints(run, method.name, seed, i, result, prov, wanted)
                    ckpt_seconds += time.perf_counter() - t0
                    ckpt_count += len(saved)
                rows += _row_set(run, method.name, result, i, wanted, wall, prov, saved)
            append_rows(path, rows)
            run.tick(method.name, runs_done, total_runs)
            final = result.selection["final"]
            run.log(
                f"    done in {wall:.1f} s: final mean {np.mean(final['test_mean']):.4f}, "
                f"worst {np.mean(final['test_worst']):.4f}"
            )
        if run.checkpoints:
            where = run.out / "checkpoints"
            run.log(f"checkpoints: {ckpt_count} saved under {where} in {ckpt_seconds:.1f} s")

        # The summary covers the requested seeds (rows of other seeds, hyperparameters or provenance in the
        # same directory are kept in results.jsonl but left out of the tables); one complete row set per
        # (method, seed), the latest. A partial run tabulates only its own methods.
        complete, _ = complete_sets([r for r in read_results(run.out) if run.current(r)], wanted)
        names = {m.name for m in (exp.methods if run.tables == run.out else run.methods)}
        rows = [
            r
            for (name, seed), members in complete.items()
            if name in names and seed < run.seeds and (name not in configs or fresh(name, seed))
            for r in members
        ]
        table = summarize(exp, rows)
        run.tables.mkdir(parents=True, exist_ok=True)
        _write_tables(exp, run.tables, table, provenance_lines=describe_provenance(rows))
        if run.tables != run.out:
            kept = f"the full tables in {run.out} are left as they are"
            run.log(f"partial run: tables in {run.tables} ({kept})")
        if run.plot and table:
            from jaxirm.plotting import plot_results

            fig = plot_results(exp, table, trajectories=trajectories(exp, rows) or None)
            fig.savefig(run.tables / "plot.png", dpi=120, bbox_inches="tight")
    return table


def prepare_method(run: Run, name: str, data: Sequence, seeds: Sequence[int]) -> Prepared:
    """The sweep of one method over the given seeds, checked and laid out (`jaxirm._sweep.prepare`) as
    `reproduce` runs it: one run per seed on that seed's data, the registered hyperparameters as a one-point
    grid. ``data``: `Run.data`'s (train, val, test) per seed. `benchmarks.main_job` times these sweeps."""
    solver, has_val = run.solvers[name], data[0][1] is not None
    return prepare(
        solver,
        to_batch([data[s][0] for s in seeds], with_z=solver.needs_z),
        run.steps,
        seeds=list(seeds),
        grid={k: [v] for k, v in run.hparams[name].items()},
        test=to_batch([data[s][2] for s in seeds], with_z=False),
        val=to_batch([data[s][1] for s in seeds], with_z=False) if has_val else None,
        eval_every=min(run.exp.eval_every, run.steps),
        metric=run.exp.metric,
        data_per_seed=True,
        keep_selected=run.checkpoints,
    )


def _row_set(run: Run, method: str, result, i: int, wanted, wall: float, prov, saved: dict) -> list[dict]:
    """The rows of run ``i`` of a method's sweep, one per selection, sharing a fresh ``run_id``."""
    exp, run_id, rows = run.exp, uuid.uuid4().hex, []
    for selection in (s for s in wanted if s in result.selection):
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
                "method": method,
                "seed": result.configs[i]["seed"],
                "selection": selection,
                "test_mean": float(sel["test_mean"][i]),
                "test_worst": float(sel["test_worst"][i]),
                "step": int(sel["step"][i]),
                "diverged": bool(result.diverged[i]),
                "steps": run.steps,
                "hparams": run.hparams[method],
                "metric": exp.metric,
                "sweep_wall_s": round(wall, 3),
                "run_id": run_id,
                "provenance": prov,
                **extra,
            }
        )
    return rows


def _save_checkpoints(run: Run, method: str, seed: int, i: int, result, prov, wanted) -> dict:
    """Saves run ``i``'s final and selected states; returns ``{selection: path relative to out}``."""
    from jaxirm.checkpoint import save

    states = {"final": result.state, **(result.selected_states or {})}
    saved = {}
    for selection in wanted:
        if selection not in states or selection not in result.selection:
            continue
        one = jax.tree_util.tree_map(lambda a: a[i], states[selection])
        rel = Path("checkpoints") / method / f"seed{seed}" / selection
        meta = {
            "experiment": run.exp.name,
            "method": method,
            "seed": seed,
            "selection": selection,
            "step": int(result.selection[selection]["step"][i]),
            "hparams": run.hparams[method],
            "metric": run.exp.metric,
            "provenance": prov,
        }
        save(run.out / rel, one, meta)
        saved[selection] = str(rel)
    return saved
