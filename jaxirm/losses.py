"""Per-example losses on logits, and the closed forms of their dummy-scale derivatives.

Every loss maps ``(logits, y)`` to per-example losses of shape ``[n]``; nothing is averaged here, so the
environment layer can weight and reduce them. Each built-in loss carries a ``kind`` attribute
(``"binary"``, ``"regression"`` or ``"multiclass"``) that the public boundary uses to check shapes; a user's
own loss needs none (then logits may be ``[n]`` or ``[n, C]``).

A loss passed to `jaxirm.env_risks` / `jaxirm.scale_grads` must be *per-example*: loss ``i`` may depend on
``logits[i]`` and ``y[i]`` only (no batch statistics).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxirm import _validation as _v
from jaxirm._types import LossFn

__all__ = [
    "bce_with_logits",
    "softmax_cross_entropy",
    "squared_error",
    "scale_derivative",
]


def _tag(kind: str):
    def deco(fn):
        fn.kind = kind
        return fn

    return deco


@jax.custom_jvp
def _softplus(f: jax.Array) -> jax.Array:
    """softplus(f) = log(1 + e^f), stably: max(f, 0) + log1p(e^{−|f|})."""
    return jnp.maximum(f, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(f)))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    # d softplus / df = σ(f). `jax.nn.softplus` differentiates through logaddexp (two exponentials and a
    # select per example); here σ comes from one `lax.logistic`, whose own derivative σ(1 − σ) serves the
    # second derivatives the penalties take (∂/∂θ of ∂R/∂w).
    (f,), (t,) = primals, tangents
    return _softplus(f), jax.nn.sigmoid(f) * t


@_tag(_v.BINARY)
def bce_with_logits(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """Binary cross-entropy on logits, per example (torch's ``BCEWithLogitsLoss(reduction="none")``).

    ℓ(f, y) = softplus(f) − y·f = −y log σ(f) − (1 − y) log(1 − σ(f)), computed stably.

    Args:
      logits: ``[n]`` real logits f.
      y: ``[n]`` targets in [0, 1] (hard labels 0/1 or soft labels).

    Returns:
      ``[n]`` per-example losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm.losses import bce_with_logits
      >>> bce_with_logits(jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0])).round(4)
      Array([0.6931, 2.1269], dtype=float32)
    """
    f = jnp.asarray(logits)
    y = jnp.asarray(y, dtype=f.dtype)
    return _softplus(f) - y * f


@_tag(_v.MULTICLASS)
def softmax_cross_entropy(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """Softmax cross-entropy with integer class labels, per example (torch's ``CrossEntropyLoss``).

    ℓ(f, y) = logsumexp(f) − f_y.

    Args:
      logits: ``[n, C]`` real logits.
      y: ``[n]`` integer labels in ``[0, C)``.

    Returns:
      ``[n]`` per-example losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm.losses import softmax_cross_entropy
      >>> softmax_cross_entropy(jnp.zeros((1, 4)), jnp.array([2])).round(4)
      Array([1.3863], dtype=float32)
    """
    f = jnp.asarray(logits)
    y = jnp.asarray(y)
    picked = jnp.take_along_axis(f, y[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jax.nn.logsumexp(f, axis=1) - picked


@_tag(_v.REGRESSION)
def squared_error(predictions: ArrayLike, y: ArrayLike) -> jax.Array:
    """Squared error (s − y)², per example (torch's ``MSELoss(reduction="none")``).

    Args:
      predictions: ``[n]`` real predictions s (the "logits" of a regression model).
      y: ``[n]`` real targets.

    Returns:
      ``[n]`` per-example losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm.losses import squared_error
      >>> squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0]))
      Array([1., 4.], dtype=float32)
    """
    s = jnp.asarray(predictions)
    return (s - jnp.asarray(y, dtype=s.dtype)) ** 2


def scale_derivative(loss_fn: LossFn, logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """Closed form of ∂ℓ(w·f_i, y_i)/∂w at w = 1, per example, for the built-in losses.

    These are what `jaxirm.scale_grads` computes with `jax.grad`; they exist to test autodiff against and
    for readers of the theory:

    * `bce_with_logits`: (σ(f) − y)·f
    * `squared_error`: 2(f − y)·f
    * `softmax_cross_entropy`: Σ_c (softmax(f)_c − 1[c = y])·f_c

    Args:
      loss_fn: one of the three built-in losses.
      logits: ``[n]`` (binary, regression) or ``[n, C]`` (multiclass).
      y: ``[n]`` targets.

    Returns:
      ``[n]`` per-example derivatives.

    Raises:
      ValueError: ``loss_fn`` is not a built-in loss (no closed form is known for it), or the shapes do not
        fit it (see `jaxirm.env_risks`).
      TypeError: see `jaxirm.env_risks`.
    """
    logits = _v.check_logits(loss_fn, logits)
    y = _v.check_targets(loss_fn, logits, y)
    if loss_fn is bce_with_logits:
        return (jax.nn.sigmoid(logits) - y.astype(logits.dtype)) * logits
    if loss_fn is squared_error:
        return 2.0 * (logits - y.astype(logits.dtype)) * logits
    if loss_fn is softmax_cross_entropy:
        resid = jax.nn.softmax(logits, axis=1) - jax.nn.one_hot(y, logits.shape[1], dtype=logits.dtype)
        return jnp.sum(resid * logits, axis=1)
    name = getattr(loss_fn, "__name__", repr(loss_fn))
    raise ValueError(f"loss_fn {name} has no closed-form scale derivative; use jaxirm.scale_grads (autodiff)")
