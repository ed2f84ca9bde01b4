"""A reproduction resolved and checked before any data is loaded: the `Run` that
`jaxirm.experiments.reproduce`, `jaxirm.experiments.search` and an `Experiment.runner` work from, and where
its tables go."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxirm._progress import progress_enabled
from jaxirm._validation import check_hparams
from jaxirm.experiments._registry import Experiment, Method, get
from jaxirm.experiments._store import RESULTS, check_out_dir, partial_tag
from jaxirm.experiments._tables import _jsonable
from jaxirm.solvers import Solver

__all__ = ["Run", "plan", "table_dir"]


@dataclasses.dataclass(frozen=True)
class Run:
    """A reproduction as `jaxirm.experiments.reproduce` resolves and checks it before any data is loaded:
    what an `Experiment.runner` receives.

    Attributes:
      exp: the experiment.
      seeds: number of seeds (seeds 0 … seeds−1).
      steps: training steps per run.
      methods: the chosen methods, in table order.
      solvers: ``{method name: Solver}``, built once.
      hparams: ``{method name: hyperparameters}`` as the rows record them (floats; overrides applied).
      out: the output folder (created and checked writable).
      tables: where the tables go (`table_dir`: ``out``, or ``out/partial/<tag>`` for a partial run).
      log: takes one line of progress text.
      tick: ``tick(method, done, total)``, the ``on_progress`` callback (a no-op by default).
      plot: write ``plot.png``.
      reuse_stale: reuse complete rows whose provenance differs.
      checkpoints: save each run's final and selected states.
      data_dir: the folder of user-supplied data (`Experiment.data`), None for the default.
    """

    exp: Experiment
    seeds: int
    steps: int
    methods: tuple[Method, ...]
    solvers: Mapping[str, Solver]
    hparams: Mapping[str, dict]
    out: Path
    tables: Path
    log: Callable[[str], None]
    tick: Callable[[str, int, int], None]
    plot: bool = True
    reuse_stale: bool = False
    checkpoints: bool = False
    data_dir: str | os.PathLike | None = None

    @property
    def results(self) -> Path:
        """``out/results.jsonl``."""
        return self.out / RESULTS

    def current(self, row: dict) -> bool:
        """Whether a row counts for this run: experiment, steps and the method's hyperparameters all match, so
        changing a method's hyperparameters and rerunning into the same directory recomputes it."""
        return (
            row.get("experiment") == self.exp.name
            and row.get("steps") == self.steps
            and row.get("hparams") == self.hparams.get(row.get("method"))
        )

    def data(self) -> list[tuple]:
        """``(train, val, test)`` of every seed (`Experiment.data`)."""
        return [self.exp.data(seed, self.data_dir) for seed in range(self.seeds)]


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
    """Where `jaxirm.experiments.reproduce` writes the tables of a run: ``out`` for the full registered run,
    else ``out/partial/<tag>`` (a subset of methods, other seeds or steps, or overridden hyperparameters), so
    a partial run never replaces the full tables."""
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


def plan(
    experiment: str | Experiment,
    *,
    out: str | os.PathLike,
    seeds: int | None = None,
    steps: int | None = None,
    methods: Sequence[str] | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    overrides: Mapping[str, float] | None = None,
    **options: Any,
) -> Run:
    """The `Run` of `jaxirm.experiments.reproduce`'s arguments (the same names and defaults; ``options``:
    ``plot``, ``reuse_stale``, ``checkpoints``, ``data_dir``), checked before any data is loaded or compiled.

    Raises:
      KeyError: an unknown experiment or method.
      ValueError: ``seeds`` or ``steps`` < 1, ``steps`` too few for a method, an override no chosen method
        accepts or out of range, or ``out`` not a writable directory.
    """
    exp = get(experiment) if isinstance(experiment, str) else experiment
    num_seeds = exp.seeds if seeds is None else int(seeds)
    num_steps = exp.num_steps if steps is None else int(steps)
    if num_seeds < 1 or num_steps < 1:
        raise ValueError(f"seeds and steps must be >= 1, got seeds={num_seeds}, steps={num_steps}")
    chosen = exp.methods if methods is None else tuple(exp.method(m) for m in methods)
    out = check_out_dir(out)
    solvers = {m.name: m.build() for m in chosen}
    _check_steps(exp, solvers, num_steps)
    if log is None:
        log = _print_line if progress_enabled(progress) else _ignore
    return Run(
        exp=exp,
        seeds=num_seeds,
        steps=num_steps,
        methods=chosen,
        solvers=solvers,
        hparams=_overridden(exp, chosen, solvers, overrides),
        out=out,
        tables=table_dir(exp, out, seeds=num_seeds, steps=num_steps, methods=methods, overrides=overrides),
        log=log,
        tick=on_progress or _ignore,
        **options,
    )


def _print_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _ignore(*args: Any) -> None:
    pass


def _method_config(method: Method, run: Run, eval_every: int, hparams: Mapping | None = None) -> dict:
    """The full configuration of a method's runs (what a row's provenance records as ``method``), with the
    run's hyperparameters of the method (or ``hparams``)."""
    solver = run.solvers[method.name]
    hparams = run.hparams[method.name] if hparams is None else hparams
    return {
        "name": method.name,
        "solver": solver.name,
        "hparams": _jsonable({**dict(solver.defaults), **hparams}),
        "steps": run.steps,
        "eval_every": eval_every,
        "metric": run.exp.metric,
        "loss_kind": solver.loss_kind,
        "num_envs": solver.num_envs,
        "needs_z": solver.needs_z,
        "uses_envs": solver.uses_envs,
        "full_batch": solver.full_batch,
        "min_steps": solver.min_steps,
    }
