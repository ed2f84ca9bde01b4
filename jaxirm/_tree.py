"""Pytree helpers of the training step (private): a leafwise select and a finiteness test."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxirm._types import PyTree


def tree_where(cond: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    """Leafwise ``where(cond, new, old)`` for two pytrees of the same structure."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def all_finite(tree: PyTree) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite.

    One reduction over all the leaves, concatenated in their common dtype (XLA fuses the concatenation into
    the reduction), so covering the optimizer states as well costs next to nothing per step.
    """
    leaves = [
        jnp.ravel(leaf)
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    if not leaves:
        return jnp.asarray(True)
    dtype = jnp.result_type(*leaves)
    return jnp.all(jnp.isfinite(jnp.concatenate([leaf.astype(dtype) for leaf in leaves])))
