"""Per-environment risks R_e(w) and their dummy-scale derivatives g_e = ∂R_e/∂w at w = 1.

R_e(w) = Σ_i A_ie ℓ(w·f_i, y_i) / Σ_i A_ie is the weighted mean loss of environment e when the logits f are
scaled by a dummy classifier w. IRMv1 and its TV relatives penalise the derivatives g_e.

**Cost.** `scale_grads` gives every example its own dummy scale w_i (built from the data with
`jnp.ones_like`), takes *one* `jax.grad` of Σ_i ℓ(w_i f_i, y_i) to get d_i = ∂ℓ_i/∂w_i, and reduces d per
environment: g_e = Σ_i A_ie d_i / Σ_i A_ie. Because R_e depends on the common scale w only through the w_i,
this is exactly ∂R_e/∂w, and it costs one pass over the data plus a segment sum: O(n + E) for labels, instead
of E full passes for a vmap over environments. Weights cost one ``[n, E]`` matrix product.

**Vector dummy.** `feature_scale_grads` is the IRM paper's own formulation (arXiv 1907.02893, section 3.1
and its synthetic code): the model outputs features φ(x) ∈ ℝᵈ of a linear head whose logit is w·φ(x) with a
dummy vector w = 1, and g_e = ∇_w R_e ∈ ℝᵈ. The same trick applies with a per-example-per-feature dummy
``[n, d]``: one `jax.grad` gives d_ij = ℓ'(f_i, y_i)·φ_ij, reduced per environment to ``[E, d]`` in
O(n·d + E·d).

**Sharding.** The dummy scale is derived from the data, never a Python literal: under `jax.shard_map` the
gradient of a literal (unvarying) scale is summed across devices, which silently turns a per-shard penalty
into a global one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxirm import _validation as _v
from jaxirm._types import LossFn
from jaxirm.envs import _env_means, split_halves

__all__ = ["env_risks", "scale_grads", "feature_scale_grads", "split_scale_grads"]


def _check(loss_fn, logits, y, envs, num_envs):
    logits = _v.check_logits(loss_fn, logits)
    y = _v.check_targets(loss_fn, logits, y)
    envs, num = _v.check_envs(envs, logits.shape[0], num_envs)
    return logits, y, envs, num


def _per_example_losses(loss_fn: LossFn, logits: jax.Array, y: jax.Array, scale) -> jax.Array:
    scale = jnp.asarray(scale, logits.dtype)
    scaled = scale[:, None] * logits if (logits.ndim == 2 and scale.ndim == 1) else scale * logits
    losses = loss_fn(scaled, y)
    if jnp.shape(losses) != (logits.shape[0],):
        name = getattr(loss_fn, "__name__", "loss_fn")
        raise ValueError(
            f"loss_fn {name} must return per-example losses of shape [n] = [{logits.shape[0]}], "
            f"got shape {jnp.shape(losses)}"
        )
    return losses


def _scale_derivatives(loss_fn: LossFn, logits: jax.Array, y: jax.Array) -> jax.Array:
    """d_i = ∂ℓ(w_i f_i, y_i)/∂w_i at w_i = 1, for all i in one reverse pass."""
    dummy = jnp.ones_like(logits if logits.ndim == 1 else logits[:, 0])
    return jax.grad(lambda w: jnp.sum(_per_example_losses(loss_fn, logits, y, w)))(dummy)


def _check_features(loss_fn, features, y, envs, num_envs):
    kind = _v.loss_kind(loss_fn)
    if kind == _v.MULTICLASS:
        name = getattr(loss_fn, "__name__", "loss_fn")
        raise ValueError(
            f"feature_scale_grads needs a loss on one logit per example (binary or regression), got the "
            f"multiclass loss {name}"
        )
    features = _v.as_array("features", features)
    if not jnp.issubdtype(features.dtype, jnp.floating):
        raise TypeError(f"features must be floating point, got dtype {features.dtype}")
    if features.ndim != 2:
        raise ValueError(
            f"features must have shape [n, d] (the linear head's features, summed to the logit), got shape "
            f"{features.shape}"
        )
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"features must hold at least one example and one feature, got {features.shape}")
    y = _v.check_targets(loss_fn, features[:, 0], y)
    envs, num = _v.check_envs(envs, features.shape[0], num_envs)
    return features, y, envs, num


def _feature_scale_derivatives(loss_fn: LossFn, features: jax.Array, y: jax.Array) -> jax.Array:
    """d_ij = ∂ℓ(Σ_k w_ik φ_ik, y_i)/∂w_ij at w = 1, ``[n, d]``, in one reverse pass."""
    dummy = jnp.ones_like(features)  # from the data, never a literal (shard_map psum pitfall)

    def total(w):
        logits = jnp.sum(w * features, axis=1)
        return jnp.sum(_per_example_losses(loss_fn, logits, y, 1.0))

    return jax.grad(total)(dummy)


def env_risks(
    loss_fn: LossFn,
    logits: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
    scale: ArrayLike = 1.0,
) -> jax.Array:
    """Per-environment risks R_e(w) = Σ_i A_ie ℓ(w·f_i, y_i) / Σ_i A_ie.

    An environment without mass (a label that never occurs, an all-zero weight column) has risk exactly 0,
    with a zero gradient, never NaN.

    Args:
      loss_fn: per-example loss ``(logits, y) -> [n]``, e.g. `jaxirm.losses.bce_with_logits`.
      logits: ``[n]`` (binary, regression) or ``[n, C]`` (multiclass) model outputs f.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels in ``[0, num_envs)`` or ``[n, E]`` non-negative weights.
      num_envs: static number of environments E; required with labels.
      scale: the classifier scale w, a scalar or ``[n]`` (one per example).

    Returns:
      ``[E]`` risks. With ``env_measure(envs, kind="empirical")`` as μ, Σ_e μ_e R_e is the plain mean loss.

    Raises:
      TypeError: ``loss_fn`` not callable; ``logits`` not floating point; ``y`` not integer for
        `jaxirm.losses.softmax_cross_entropy`; ``envs`` of shape ``[n]`` not integer; ``num_envs`` not a
        Python int; an argument that is not a numeric array.
      ValueError: ``logits`` not ``[n]`` for a binary/regression loss or not ``[n, C]`` for a multiclass
        loss; ``logits``, ``y`` and ``envs`` of different lengths; ``y`` not 1-D; ``envs`` neither ``[n]``
        nor ``[n, E]``; integer labels without ``num_envs``; ``num_envs`` < 1 or different from E;
        ``scale`` neither scalar nor ``[n]``; ``loss_fn`` not returning ``[n]``; and, when the arrays are
        concrete, labels out of ``[0, num_envs)``, class labels out of ``[0, C)`` and negative or
        non-finite weights. All are raised before tracing, with the argument named.
    """
    logits, y, envs, num = _check(loss_fn, logits, y, envs, num_envs)
    scale = _v.as_array("scale", scale)
    if scale.shape not in ((), (logits.shape[0],)):
        raise ValueError(
            f"scale must be a scalar or have shape [n] = [{logits.shape[0]}], got shape {scale.shape}"
        )
    return _env_means(_per_example_losses(loss_fn, logits, y, scale), envs, num)


def scale_grads(
    loss_fn: LossFn,
    logits: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
) -> jax.Array:
    """Dummy-scale gradients g_e = ∂R_e(w)/∂w at w = 1, by `jax.grad`, in O(n + E).

    For `jaxirm.losses.bce_with_logits` this equals the weighted mean of (σ(f_i) − y_i)·f_i over environment
    e (see `jaxirm.losses.scale_derivative`). Environments without mass get exactly 0. The result is
    differentiable in ``logits`` (the penalties' gradients are second derivatives of the loss) and in soft
    ``envs`` weights (the minimax games ascend through them).

    Args:
      loss_fn: per-example loss ``(logits, y) -> [n]``; loss i may depend on example i only.
      logits: ``[n]`` or ``[n, C]`` model outputs f.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels in ``[0, num_envs)`` or ``[n, E]`` non-negative weights.
      num_envs: static number of environments E; required with labels.

    Returns:
      ``[E]`` gradients g.

    Raises:
      TypeError: see the list in `jaxirm.env_risks`.
      ValueError: see the list in `jaxirm.env_risks`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.losses import bce_with_logits
      >>> logits = jnp.array([1.0, -1.0, 2.0, 0.5])
      >>> y = jnp.array([1.0, 0.0, 0.0, 1.0])
      >>> g = jaxirm.scale_grads(bce_with_logits, logits, y, jnp.array([0, 0, 1, 1]), num_envs=2)
      >>> g.tolist()
      [-0.2689, 0.7864]
      >>> float(jaxirm.tv_l1(g))  # (mean_e |g_e|)^2
      0.2784
    """
    logits, y, envs, num = _check(loss_fn, logits, y, envs, num_envs)
    return _env_means(_scale_derivatives(loss_fn, logits, y), envs, num)


def feature_scale_grads(
    loss_fn: LossFn,
    features: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
) -> jax.Array:
    """Vector-dummy gradients g_e = ∇_w R_e(w) at w = 1 ∈ ℝᵈ, the IRM paper's formulation, in O(n·d + E·d).

    The model's output features φ(x_i) ∈ ℝᵈ feed a linear head with a dummy vector w: the logit is
    f_i = w·φ(x_i), which is Σ_j φ_ij at w = 1 (IRM paper, arXiv 1907.02893: Φ a d×d matrix, prediction
    w·Φx). R_e(w) = Σ_i A_ie ℓ(w·φ(x_i), y_i) / Σ_i A_ie and g_ej = mean_e(ℓ'(f_i, y_i)·φ_ij). One `jax.grad`
    over a per-example-per-feature dummy ``jnp.ones_like(features)`` gives every ∂ℓ_i/∂w_ij; a segment sum
    (or a weight contraction) per environment follows — no vmap over environments. Summing g_e over its d
    entries gives the scalar-dummy `scale_grads` of the logits Σ_j φ_ij.

    Environments without mass get exactly 0. Differentiable in ``features`` and in soft ``envs`` weights.

    Args:
      loss_fn: per-example loss ``(logits [n], y) -> [n]`` on one logit per example (binary or regression,
        e.g. `jaxirm.losses.squared_error`); loss i may depend on example i only.
      features: ``[n, d]`` features φ(x) whose sum over the last axis is the logit.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels in ``[0, num_envs)`` or ``[n, E]`` non-negative weights.
      num_envs: static number of environments E; required with labels.

    Returns:
      ``[E, d]`` gradients; pass them to `jaxirm.tv_l2` (Σ_e μ_e‖g_e‖²) or `jaxirm.tv_l1`
      ((Σ_e μ_e‖g_e‖)²).

    Raises:
      TypeError: ``features`` not floating point; the other types as in `jaxirm.env_risks`.
      ValueError: a multiclass loss; ``features`` not ``[n, d]`` or empty; ``y`` and ``envs`` as in
        `jaxirm.env_risks`. All raised before tracing, with the argument named.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.losses import squared_error
      >>> phi = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> g = jaxirm.feature_scale_grads(squared_error, phi, jnp.zeros(3), jnp.array([0, 0, 1]), num_envs=2)
      >>> g.tolist()  # env 0: mean of 2(f - y)·φ over its two rows; env 1: its one row
      [[1.0, 4.0], [4.0, 4.0]]
    """
    features, y, envs, num = _check_features(loss_fn, features, y, envs, num_envs)
    return _env_means(_feature_scale_derivatives(loss_fn, features, y), envs, num)


def split_scale_grads(
    loss_fn: LossFn,
    logits: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
    halves: ArrayLike | None = None,
) -> jax.Array:
    """Dummy-scale gradients of two disjoint halves a, b of every environment (unbiased minibatch penalties).

    g^a_e and g^b_e are `scale_grads` restricted to the examples of half a and half b. On a minibatch their
    product g^a_e·g^b_e is an unbiased estimate of g_e² (the halves are independent), which the split-batch
    estimators `jaxirm.tv_l2_split` and `jaxirm.tv_l1_split` use.

    Args:
      loss_fn: per-example loss ``(logits, y) -> [n]``.
      logits: ``[n]`` or ``[n, C]`` model outputs f.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels in ``[0, num_envs)`` or ``[n, E]`` non-negative weights.
      num_envs: static number of environments E; required with labels.
      halves: ``[n]`` integers in {0, 1} saying which half each example is in; default
        `jaxirm.envs.split_halves` (alternating within each environment for labels, over rows for weights).

    Returns:
      ``[2, E]``: row 0 is g^a, row 1 is g^b. An environment without mass in a half gets 0 there.

    Raises:
      TypeError: see the list in `jaxirm.env_risks`.
      ValueError: see the list in `jaxirm.env_risks`. ``halves`` not an integer ``[n]`` array
        (``TypeError``/``ValueError``), or holding values other than 0/1 (checked when concrete).
    """
    logits, y, envs, num = _check(loss_fn, logits, y, envs, num_envs)
    n = logits.shape[0]
    if halves is None:
        halves = split_halves(envs, num)
    else:
        halves = _v.as_array("halves", halves)
        if halves.shape != (n,):
            raise ValueError(f"halves must have shape [n] = [{n}], got shape {halves.shape}")
        if not (jnp.issubdtype(halves.dtype, jnp.integer) or halves.dtype == jnp.bool_):
            raise TypeError(f"halves must hold integers 0/1, got dtype {halves.dtype}")
        values = _v.concrete_values(halves)
        if values is not None and np.any((values != 0) & (values != 1)):
            raise ValueError("halves must hold only 0 (half a) and 1 (half b)")
        halves = halves.astype(jnp.int32)
    derivs = _scale_derivatives(loss_fn, logits, y)
    if envs.ndim == 1:
        means = _env_means(derivs, envs * 2 + halves, 2 * num)
        return means.reshape(num, 2).T
    in_b = halves.astype(envs.dtype)[:, None]
    stacked = jnp.concatenate([envs * (1 - in_b), envs * in_b], axis=1)
    return _env_means(derivs, stacked, 2 * num).reshape(2, num)
