"""Selection of a step within one run, and the names and meanings of every selection rule.

`STEP_SELECTIONS` are what `jaxirm.fit` and `jaxirm.sweep` report per run; `evaluate` and
`summarize_envs` give the per-environment metric and the pooled / worst summaries they select by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxirm._types import Batch, Solver, SolverState
from jaxirm.envs import env_means

STEP_SELECTIONS = ("final", "train-val", "oracle")
"""Selections of a step within one run (what `jaxirm.fit` and `jaxirm.sweep` report)."""

SELECTIONS = STEP_SELECTIONS
"""Alias of `STEP_SELECTIONS` (the names `jaxirm.loops.SELECTIONS` has always exported)."""

CONFIG_SELECTIONS = ("train-val", "leave-one-env-out", "oracle")
"""Selections of a hyperparameter configuration (and its step) in a search (`select_config`)."""

DESCRIPTIONS = {
    "final": "the model after the last step",
    "train-val": "the evaluated step (in a search: and configuration) with the best {metric} on held-out "
    "rows of the training environments",
    "leave-one-env-out": "the configuration and step with the best {metric} on each training environment in "
    "turn when trained on the others, averaged (needs >= 3 training environments)",
    "oracle": "test-set selection: best test mean and, separately, best test worst over evaluated steps "
    "(in a search: the configuration with the best test mean) — an upper bound, not a legitimate selection",
}
"""One line per selection name; ``{metric}`` is filled in by `describe`."""


def describe(name: str, metric: str = "metric") -> str:
    """The description of a selection name, with the metric filled in.

    Raises:
      ValueError: an unknown name.
    """
    if name not in DESCRIPTIONS:
        raise ValueError(f"unknown selection {name!r}; expected one of {list(DESCRIPTIONS)}")
    return DESCRIPTIONS[name].format(metric=metric)


def _per_example_metric(logits: jax.Array, y: jax.Array, metric: str) -> jax.Array:
    if metric == "mse":
        return (logits - y.astype(logits.dtype)) ** 2
    if logits.ndim == 2:
        return (jnp.argmax(logits, axis=1) == y).astype(jnp.float32)
    return ((logits > 0) == (y > 0.5)).astype(jnp.float32)


def evaluate(
    solver: Solver, state: SolverState, batch: Batch, num_envs: int, metric: str = "accuracy"
) -> jax.Array:
    """Per-environment metric of the solver's model on a labelled batch.

    Args:
      solver: the `Solver` whose ``predict`` gives the logits.
      state: its state.
      batch: a `Batch` whose ``envs`` are integer labels ``[n]`` in ``[0, num_envs)``.
      num_envs: static number of environments.
      metric: ``"accuracy"`` or ``"mse"``.

    Returns:
      ``[num_envs]`` metric per environment (0 for an environment without examples).
    """
    values = _per_example_metric(solver.predict(state, batch.x), batch.y, metric)
    return env_means(values, batch.envs, num_envs)


def summarize_envs(per_env: jax.Array, counts: jax.Array, metric: str) -> tuple[jax.Array, jax.Array]:
    """The papers' summaries: the metric over all test examples pooled (their "mean accuracy", which is the
    mean over environments when these have equal sizes) and the worst environment's, over the environments
    that hold examples (an empty one, e.g. a gap in the labels, is not scored as accuracy 0 or MSE 0)."""
    present = counts > 0
    if metric == "mse":
        worst = jnp.max(jnp.where(present, per_env, -jnp.inf), axis=-1)
    else:
        worst = jnp.min(jnp.where(present, per_env, jnp.inf), axis=-1)
    pooled = jnp.sum(per_env * counts, axis=-1) / jnp.maximum(jnp.sum(counts, axis=-1), 1.0)
    return pooled, worst


def select_steps(history: Mapping[str, Any], metric: str, xp: Any = np) -> dict:
    """Model selection over the evaluated steps of a run: ``final``, ``train-val`` and ``oracle``.

    Args:
      history: ``step``, ``test_mean``, ``test_worst`` (and ``val`` for ``train-val``) over T evaluations,
        ``[T]`` or with leading run axes ``[..., T]`` (numpy, or jax arrays with ``xp=jax.numpy``).
      metric: ``"accuracy"`` (higher is better) or ``"mse"`` (lower is better).
      xp: the array module (numpy or jax.numpy).

    Returns:
      ``{selection: {"step", "test_mean", "test_worst"}}`` (``train-val`` also ``val``), each ``[...]``;
      empty without test metrics. ``oracle`` takes the best test mean and, separately, the best test worst.
    """
    if "test_mean" not in history:
        return {}
    better = xp.argmin if metric == "mse" else xp.argmax
    steps, mean, worst = history["step"], history["test_mean"], history["test_worst"]

    def at(values, idx):
        return xp.take_along_axis(values, idx[..., None], axis=-1)[..., 0]

    last = xp.full(mean.shape[:-1], mean.shape[-1] - 1, dtype=np.int32)
    out = {"final": {"step": at(steps, last), "test_mean": at(mean, last), "test_worst": at(worst, last)}}
    if "val" in history:
        best = better(history["val"], axis=-1)
        out["train-val"] = {
            "step": at(steps, best),
            "test_mean": at(mean, best),
            "test_worst": at(worst, best),
            "val": at(history["val"], best),  # the validation score it was selected by
        }
    i_mean, i_worst = better(mean, axis=-1), better(worst, axis=-1)
    out["oracle"] = {
        "step": at(steps, i_mean),
        "test_mean": at(mean, i_mean),
        "test_worst": at(worst, i_worst),
    }
    return out
