"""The types every layer shares: `Batch`, `LossFn`, `PyTree`, `Metrics`, `Hparams`.

One definition each, re-exported where users meet them (`jaxirm.Batch`, `jaxirm.solvers.Batch`,
`jaxirm.losses.LossFn`, `jaxirm.risks.LossFn`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

__all__ = ["Batch", "Hparams", "LossFn", "Metrics", "PyTree"]

PyTree = Any
"""A JAX pytree (parameters, optimizer states, solver states)."""

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
"""``loss_fn(logits [n] or [n, C], y [n]) -> [n]`` per-example losses."""

Metrics = dict[str, jax.Array]
"""Per-step training metrics: float32 scalars by name (``loss``, ``risk``, ``penalty``, ``lam``, …)."""

Hparams = Mapping[str, float]
"""Swept hyperparameters by name (``lam``, ``l2``, ``anneal_steps``, ``lr``, …)."""


class Batch(NamedTuple):
    """A (full or mini) batch of training data.

    Attributes:
      x: ``[n, ...]`` inputs.
      y: ``[n]`` targets.
      envs: ``[n]`` int environment labels or ``[n, E]`` weights (may be None for solvers that infer them).
      z: ``[n, k]`` auxiliary variables for environment inference, or None.
    """

    x: jax.Array
    y: jax.Array
    envs: jax.Array | None = None
    z: jax.Array | None = None
