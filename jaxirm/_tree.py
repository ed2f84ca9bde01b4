"""Pytree helpers of the training step (private): a leafwise select, a finiteness test and a branch that
stays one under vmap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import jaxpr_as_fun

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


def when(pred: jax.Array, fn: Callable, otherwise: Callable, operands: PyTree) -> PyTree:
    """``fn(operands)`` if ``pred`` else ``otherwise(operands)``: a `jax.lax.cond` that stays a branch under
    `jax.vmap`.

    Under vmap a `lax.cond` with a batched predicate becomes a select that computes both branches for every
    member. Here a batch computes ``fn`` (for every member, then selects member by member) only when some
    member's ``pred`` holds, and skips it when none does — e.g. the frozen dual players' updates of a sweep
    whose runs are all past (or all in) their warm-up. Nested vmaps reduce the predicate level by level.
    ``fn`` and ``otherwise`` must return the same structure, shapes and dtypes, and must not close over
    traced values (pass them in ``operands``). Not differentiable (a step function's control flow).
    """
    leaves, tree = jax.tree_util.tree_flatten(operands)
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    specs = [jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, weak_type=leaf.weak_type) for leaf in leaves]
    # Both branches traced once, to jaxprs: the vmap rule re-evaluates them per level, which then costs a walk
    # over their equations instead of a second trace of the Python (flax, optax) code behind them.
    fn_flat, out_tree = _as_jaxpr_fn(fn, tree, specs)
    otherwise_flat, _ = _as_jaxpr_fn(otherwise, tree, specs)
    out = _when(fn_flat, otherwise_flat)(jnp.asarray(pred, bool), leaves)
    return jax.tree_util.tree_unflatten(out_tree, out)


def _as_jaxpr_fn(f: Callable, tree, specs) -> tuple[Callable, Any]:
    """``f`` of the pytree ``tree`` as a function of its flat leaves, evaluated from its traced jaxpr."""
    closed, shape = jax.make_jaxpr(
        lambda *leaves: f(jax.tree_util.tree_unflatten(tree, leaves)), return_shape=True
    )(*specs)
    fun = jaxpr_as_fun(closed)
    return (lambda leaves: list(fun(*leaves))), jax.tree_util.tree_structure(shape)


def _when(fn: Callable, otherwise: Callable) -> Callable:
    @jax.custom_batching.custom_vmap
    def branch(pred, operands):
        return jax.lax.cond(pred, fn, otherwise, operands)

    @branch.def_vmap
    def rule(axis_size, in_batched, pred, operands):
        pred_batched, ops_batched = in_batched

        def batched(x, b):
            return x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))

        ops = jax.tree_util.tree_map(batched, operands, ops_batched)
        preds = batched(pred, pred_batched)

        def computed(po):
            p, o = po
            new, old = jax.vmap(fn)(o), jax.vmap(otherwise)(o)
            return jax.tree_util.tree_map(
                lambda a, b: jnp.where(jnp.reshape(p, p.shape + (1,) * (a.ndim - 1)), a, b), new, old
            )

        out = _when(computed, lambda po: jax.vmap(otherwise)(po[1]))(jnp.any(preds), (preds, ops))
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return branch
