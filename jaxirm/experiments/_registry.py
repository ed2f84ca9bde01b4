"""The experiment registry (DomainBed style): a name maps to data, methods, hyperparameters, seeds, metric."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from jaxirm.datasets import EnvData
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
      build: returns the `Solver` (called once per reproduction).
      hparams: hyperparameters passed to the solver's ``init`` (overriding its defaults).
      paper: the published result to compare with, if any.
    """

    name: str
    build: Callable[[], Solver]
    hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
    paper: PaperEntry | None = None


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A reproducible experiment.

    Attributes:
      name: registry key (e.g. ``"simulation"``).
      description: one paragraph: data, setting, and what it reproduces.
      load: ``load(seed) -> (train, val, test)`` `EnvData`; ``val`` holds held-out data of the training
        environments (for ``"train-val"`` selection) and may be None.
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
        predictions): `jaxirm.experiments.reproduce` calls ``runner(exp, seeds=, steps=, out=, methods=,
        progress=, plot=, log=, on_progress=)`` instead of its own loop; it writes ``results.jsonl`` rows
        and returns a `jaxirm.experiments.summarize` table. None: the standard loop.
    """

    name: str
    description: str
    load: Callable[[int], tuple[EnvData, EnvData | None, EnvData]]
    methods: tuple[Method, ...]
    num_steps: int
    seeds: int = 10
    eval_every: int = 100
    metric: str = "accuracy"
    ceiling: float | None = None
    notes: tuple[str, ...] = ()
    selections: tuple[str, ...] = ("final", "train-val", "oracle")
    trajectories: tuple[str, ...] = ()
    search_space: Any = None
    runner: Callable[..., list[dict]] | None = None

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


_REGISTRY: dict[str, Callable[[], Experiment]] = {}


def register(name: str, factory: Callable[[], Experiment] | None = None, *, overwrite: bool = False) -> Any:
    """Registers an experiment factory under ``name`` (usable as a decorator).

    The factory is called lazily by `get`, so registering costs nothing at import time.

    Args:
      name: the registry key.
      factory: a function returning an `Experiment`; omit to use ``register`` as a decorator.
      overwrite: replace an existing entry instead of raising.

    Returns:
      The factory (so the decorator leaves it usable).

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
        _REGISTRY[name] = fn
        return fn

    return deco if factory is None else deco(factory)


def get(name: str) -> Experiment:
    """The experiment registered under ``name``.

    Raises:
      KeyError: unknown name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown experiment {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def names() -> list[str]:
    """The registered experiment names, sorted."""
    return sorted(_REGISTRY)
