"""The experiment registry (DomainBed style): a name maps to data, methods, hyperparameters, seeds, metric."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from jaxirm._validation import check_fraction
from jaxirm.datasets import EnvData, holdout
from jaxirm.selection import STEP_SELECTIONS
from jaxirm.solvers import Solver

__all__ = ["Method", "Experiment", "PaperEntry", "register", "get", "names"]


@dataclasses.dataclass(frozen=True)
class PaperEntry:
    """A published result: mean ± std of the mean and of the worst test-environment metric.

    Attributes:
      mean: mean over repeats of the mean test metric.
      mean_std: its standard deviation.
      worst: mean over repeats of the worst test-environment metric.
      worst_std: its standard deviation.
      source: where the numbers come from (e.g. ``"Wang, Lai & Zhong 2025, Table 2"``).
    """

    mean: float
    mean_std: float
    worst: float
    worst_std: float
    source: str = ""


@dataclasses.dataclass(frozen=True)
class Method:
    """One method of an experiment.

    Attributes:
      name: the paper's name (e.g. ``"IRM-TV-l1"``); unique within the experiment.
      build: returns the `Solver` (called once per reproduction). Methods of an experiment built by the
        same callable must get the same solver (they differ in ``hparams`` only): `reproduce` compiles
        their sweep program once (e.g. the two norms of a game in `paper_methods`, ``tv_norm`` 1 and 2).
      hparams: hyperparameters passed to the solver's ``init`` (overriding its defaults).
      paper: the published result to compare with, if any.
    """

    name: str
    build: Callable[[], Solver]
    hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
    paper: PaperEntry | None = None


ValSplit = Callable[[int, EnvData], tuple[EnvData, EnvData]]
"""``val(seed, train) -> (train, val)``: an experiment's own validation split (`Experiment.val`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Experiment:
    """A reproducible experiment (keyword arguments only).

    Attributes:
      name: registry key (e.g. ``"simulation"``).
      description: one paragraph: data, setting, and what it reproduces. Empty: `register` fills it with
        the first line of the factory's docstring.
      load: ``load(seed) -> (train, test)`` `EnvData` (``load(seed, data_dir=...)`` when
        ``needs_data_dir``). The older form ``load(seed) -> (train, val, test)``, which makes its own
        validation set (or None), still works; ``val`` is then ignored.
      val: the validation set (held-out data of the *training* environments, for ``"train-val"``
        selection; never test data): a fraction, held out of every training environment with
        `jaxirm.datasets.holdout` (``holdout(train, val, seed)``); a callable ``val(seed, train) -> (train,
        val)``, e.g. a fresh draw from the same process; or None, no validation set (no ``"train-val"``
        selection). `data` applies it.
      methods: the methods, in table order.
      num_steps: training steps per run.
      seeds: number of repeats (seeds 0 … seeds−1).
      eval_every: steps between evaluations.
      metric: ``"accuracy"`` or ``"mse"``.
      ceiling: the best achievable value of the metric in every test environment, if known.
      notes: extra lines for the table (settings, caveats).
      selections: the model selections written and tabulated (default all: ``final``, ``train-val``,
        ``oracle``).
      trajectories: training metrics (keys of the history, e.g. ``"lam"``, the effective penalty weight
        A·λ_Ψ) whose values at every evaluation are stored with each run's ``final`` row and drawn in the
        plot.
      search_space: the hyperparameter ranges `jaxirm search` samples (a `jaxirm.search.SearchSpace`; each
        method searches the names it registers in ``hparams``, or all its solver accepts if it registers
        none), or None.
      runner: an experiment with its own protocol (e.g. ``"sem"``, which scores coefficients, not test
        predictions): `jaxirm.experiments.reproduce` resolves and checks the run (seeds, steps, methods,
        hyperparameters, output folder) and calls ``runner(run)`` with that `jaxirm.experiments.Run`
        instead of its own loop; it writes ``results.jsonl`` rows and returns a
        `jaxirm.experiments.summarize` table. None: the standard loop.
      needs_data_dir: ``load`` reads user-supplied files: it is called as ``load(seed, data_dir=...)`` with
        the folder given to `jaxirm.experiments.reproduce` (``jaxirm reproduce --data-dir``), None when
        none was given (the loader then reads ``$JAXIRM_DATA``, default ``data/``).
    """

    name: str
    description: str = ""
    load: Callable[..., tuple[EnvData, ...]]
    val: float | ValSplit | None = 0.1
    methods: tuple[Method, ...]
    num_steps: int
    seeds: int = 10
    eval_every: int = 100
    metric: str = "accuracy"
    ceiling: float | None = None
    notes: tuple[str, ...] = ()
    selections: tuple[str, ...] = STEP_SELECTIONS
    trajectories: tuple[str, ...] = ()
    search_space: Any = None
    runner: Callable[..., list[dict]] | None = None
    needs_data_dir: bool = False

    def __post_init__(self) -> None:
        if self.val is not None and not callable(self.val):
            check_fraction("val", self.val)

    def method(self, name: str) -> Method:
        """The method called ``name``.

        Raises:
          KeyError: no such method.
        """
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(
            f"experiment {self.name!r} has no method {name!r}; it has {[m.name for m in self.methods]}"
        )

    def data(
        self, seed: int, data_dir: str | os.PathLike | None = None
    ) -> tuple[EnvData, EnvData | None, EnvData]:
        """``(train, val, test)`` of one seed: ``load``'s data with the validation split ``val`` applied.

        Every consumer of an experiment's data (`jaxirm.experiments.reproduce`, `jaxirm.experiments.search`)
        reads it here, so the split is made once, in one way.

        Args:
          seed: the seed.
          data_dir: the folder of user-supplied files, passed to ``load`` when ``needs_data_dir`` (None:
            the loader's default, ``$JAXIRM_DATA`` or ``data/``).

        Returns:
          The training, validation (None without one) and test `EnvData`.
        """
        loaded = tuple(self.load(seed, data_dir=data_dir) if self.needs_data_dir else self.load(seed))
        if len(loaded) == 3:  # the older form: load made its own validation set
            return loaded
        train, test = loaded
        if self.val is None:
            return train, None, test
        train, val = self.val(seed, train) if callable(self.val) else holdout(train, self.val, seed)
        return train, val, test


_REGISTRY: dict[str, Callable[..., Experiment]] = {}


def _described(factory: Callable[..., Experiment]) -> Callable[..., Experiment]:
    """``factory``, filling an empty ``description`` with the first line of its docstring."""
    first_line = ((factory.__doc__ or "").strip().splitlines() or [""])[0]

    @functools.wraps(factory)
    def described(*args: Any, **kwargs: Any) -> Experiment:
        exp = factory(*args, **kwargs)
        if isinstance(exp, Experiment) and not exp.description and first_line:
            exp = dataclasses.replace(exp, description=first_line)
        return exp

    return described


def register(name: str, factory: Callable[[], Experiment] | None = None, *, overwrite: bool = False) -> Any:
    """Registers an experiment factory under ``name`` (usable as a decorator).

    The factory is called lazily by `get`, so registering costs nothing at import time. An `Experiment`
    returned with an empty ``description`` gets the first line of the factory's docstring.

    Args:
      name: the registry key.
      factory: a function returning an `Experiment`; omit to use ``register`` as a decorator.
      overwrite: replace an existing entry instead of raising.

    Returns:
      The factory, which fills an empty description as above (so the decorator leaves it usable).

    Raises:
      ValueError: ``name`` is already registered and ``overwrite`` is False.

    Examples:
      >>> from jaxirm import experiments
      >>> @experiments.register("my-simulation", overwrite=True)
      ... def _my():
      ...     return experiments.get("simulation")
      >>> "my-simulation" in experiments.names()
      True
    """

    def deco(fn: Callable[[], Experiment]) -> Callable[[], Experiment]:
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"experiment {name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTRY[name] = described = _described(fn)
        return described

    return deco if factory is None else deco(factory)


def get(name: str) -> Experiment:
    """The experiment registered under ``name``.

    Raises:
      KeyError: unknown name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown experiment {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def _is_builtin(name: str) -> bool:
    """Whether ``name`` is registered to a factory of jaxirm's own code (whose solvers jaxirm builds)."""
    factory = _REGISTRY.get(name)
    return factory is not None and (getattr(factory, "__module__", "") or "").startswith("jaxirm.")


def names() -> list[str]:
    """The registered experiment names, sorted."""
    return sorted(_REGISTRY)
