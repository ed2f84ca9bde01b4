"""What `jaxirm.fit` and `jaxirm.sweep` return: `FitResult` and `SweepResult`."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxirm._types import SolverState

__all__ = ["FitResult", "SweepResult"]


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the final `SolverState` (frozen at its last finite value if the run diverged).
      history: dict of numpy arrays over the T evaluations: ``step`` ``[T]``; the training metrics of the
        step before each evaluation (``loss``, ``risk``, ``penalty``, ``lam``, ``diverged``) ``[T]``; with a
        test batch ``test_env`` ``[T, E_test]`` (E_test = largest test label + 1), ``test_mean`` (the metric
        over all test examples pooled, the papers' "mean": the mean over environments when they have equal
        sizes) and ``test_worst`` (the worst environment's) ``[T]``; with a validation batch ``val``
        ``[T]`` (mean over its environments). Worst and ``val`` are taken over the environments that hold
        examples: a label without examples (a gap in the labels, or an environment one seed's data lack in
        a ``data_per_seed`` sweep) is left out, not scored as accuracy 0; ``test_env`` shows 0 for it.
      selection: ``{"final"|"train-val"|"oracle": {"step", "test_mean", "test_worst"}}`` (floats; only the
        selections the given batches allow); ``train-val`` also keeps ``val``, the score it selected by.
      metric: ``"accuracy"`` (higher is better) or ``"mse"`` (lower is better).
    """

    state: SolverState
    history: dict
    selection: dict
    metric: str


class SweepResult(NamedTuple):
    """What `sweep` returns: every leaf has a leading run axis R = seeds × grid points.

    Attributes:
      configs: list of R dicts ``{"seed": int, <hparam>: float, ...}``, in run order.
      state: the final states, stacked (numpy).
      history: as in `FitResult`, every array with a leading ``[R]`` axis.
      selection: ``{selection: {"step"|"test_mean"|"test_worst": [R]}}``.
      diverged: ``[R]`` bool, runs frozen at a non-finite loss, parameters or optimizer state.
      metric: ``"accuracy"`` or ``"mse"``.
      selected_states: with ``sweep(..., keep_selected=True)``, ``{"train-val"|"oracle": stacked states}``:
        each run's state at the step that selection picks (``oracle``: the best test mean); else None.
    """

    configs: list
    state: Any
    history: dict
    selection: dict
    diverged: np.ndarray
    metric: str
    selected_states: dict | None = None
