"""Total-variation penalties of the dummy-scale gradients, and VREx.

With g_e = ∂R_e/∂w at w = 1 (`jaxirm.scale_grads`) and a probability measure μ over environments:

* `tv_l2`: Σ_e μ_e g_e² — IRMv1, which Lai & Wang (2024) show is a TV-ℓ2 model (IRM = IRM-TV-ℓ2).
* `tv_l1`: (Σ_e μ_e |g_e|)² — IRM-TV-ℓ1 (the mean absolute gradient, *then* squared).
* `vrex`: Σ_e μ_e (R_e − Σ_e' μ_e' R_e')² — the variance of the risks (V-REx), a TV-ℓ2 variant.
* `tv_l2_split`, `tv_l1_split`: unbiased minibatch (split-batch) estimators from two halves of every
  environment (`jaxirm.split_scale_grads`).

**Vector dummy.** `tv_l2` and `tv_l1` also take ``[E, d]`` gradients of a vector dummy w ∈ ℝᵈ
(`jaxirm.feature_scale_grads`, the IRM paper's formulation, arXiv 1907.02893) and reduce each g_e by its
Euclidean norm: Σ_e μ_e‖g_e‖² and (Σ_e μ_e‖g_e‖)². With d = 1 these are the scalar formulas. The norm's
subgradient at g_e = 0 is 0, like |·|'s (`norm0`).

``measure=None`` is the uniform measure μ_e = 1/E over all entries, the papers' formulas. Pass
`jaxirm.env_measure` to leave out padding environments (uniform over environments with mass) or to
reproduce the released code (``kind="empirical"``). By Jensen, ``tv_l1 <= tv_l2`` under the same
probability measure.

The subgradient of |g| at g = 0 is taken to be 0, the papers' rule (note that ``jax.grad(jnp.abs)(0.)`` is
1 in JAX, so the penalties use their own absolute value).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxirm import _validation as _v

__all__ = ["tv_l2", "tv_l1", "vrex", "tv_l2_split", "tv_l1_split", "abs0", "norm0"]


def abs0(x: ArrayLike) -> jax.Array:
    """Absolute value whose derivative is sign(x), so the subgradient at x = 0 is 0 (the papers' rule).

    ``jax.grad(jnp.abs)(0.)`` is 1 in JAX; use this in custom TV-ℓ1-type penalties instead.

    Args:
      x: array of any shape.

    Returns:
      |x|, same shape.

    Examples:
      >>> import jax
      >>> from jaxirm.penalties import abs0
      >>> jax.grad(abs0)(0.0), jax.grad(abs0)(-2.0)
      (Array(0., dtype=float32, weak_type=True), Array(-1., dtype=float32, weak_type=True))
    """
    x = jnp.asarray(x)
    return jax.lax.stop_gradient(jnp.sign(x)) * x


def norm0(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Euclidean norm over ``axis`` with (sub)gradient 0 at 0, like `abs0` (``jnp.linalg.norm``'s is NaN).

    Args:
      x: array with at least one axis.
      axis: the axis reduced.

    Returns:
      ‖x‖₂ over ``axis`` (that axis removed).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxirm.penalties import norm0
      >>> float(norm0(jnp.array([3.0, 4.0]))), jax.grad(norm0)(jnp.zeros(2)).tolist()
      (5.0, [0.0, 0.0])
    """
    x = jnp.asarray(x)
    sq = jnp.sum(x * x, axis=axis)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, jnp.ones_like(sq))), jnp.zeros_like(sq))


def _grads(grads) -> jax.Array:
    """``[E]`` (scalar dummy) or ``[E, d]`` (vector dummy) floating gradients."""
    grads = _v.as_array("grads", grads)
    if grads.ndim not in (1, 2) or grads.size == 0:
        raise ValueError(
            f"grads must have shape [E] (scalar dummy, scale_grads) or [E, d] (vector dummy, "
            f"feature_scale_grads), got shape {grads.shape}"
        )
    if not jnp.issubdtype(grads.dtype, jnp.floating):
        grads = grads.astype(jnp.result_type(float))
    return grads


def _measure(measure, num_envs: int, dtype) -> jax.Array:
    measure = _v.check_measure(measure, num_envs)
    if measure is None:
        return jnp.full((num_envs,), 1.0 / num_envs, dtype)
    return measure.astype(dtype)


def tv_l2(grads: ArrayLike, measure: ArrayLike | None = None) -> jax.Array:
    """IRMv1 = IRM-TV-ℓ2 penalty Σ_e μ_e g_e² (vector dummy: Σ_e μ_e‖g_e‖²).

    Args:
      grads: ``[E]`` dummy-scale gradients (`jaxirm.scale_grads`) or ``[E, d]`` vector-dummy gradients
        (`jaxirm.feature_scale_grads`).
      measure: ``[E]`` probability vector μ, or None for uniform μ_e = 1/E.

    Returns:
      Scalar penalty, ≥ 0.

    Raises:
      ValueError: ``grads`` is neither ``[E]`` nor ``[E, d]``, or empty; ``measure`` is not 1-D, not of
        length E, or (when concrete) negative.
      TypeError: an argument is not a numeric array.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm import tv_l2
      >>> tv_l2(jnp.array([1.0, -3.0]))
      Array(5., dtype=float32)
    """
    grads = _grads(grads)
    mu = _measure(measure, grads.shape[0], grads.dtype)
    sq = grads**2 if grads.ndim == 1 else jnp.sum(grads**2, axis=1)
    return jnp.sum(mu * sq)


def tv_l1(grads: ArrayLike, measure: ArrayLike | None = None) -> jax.Array:
    """IRM-TV-ℓ1 penalty (Σ_e μ_e |g_e|)² (vector dummy: (Σ_e μ_e‖g_e‖)²); subgradient 0 at g_e = 0.

    Args:
      grads: ``[E]`` dummy-scale gradients (`jaxirm.scale_grads`) or ``[E, d]`` vector-dummy gradients
        (`jaxirm.feature_scale_grads`), reduced by the Euclidean norm over d (`norm0`).
      measure: ``[E]`` probability vector μ, or None for uniform μ_e = 1/E.

    Returns:
      Scalar penalty, ≥ 0 and ≤ ``tv_l2(grads, measure)``.

    Raises:
      ValueError: ``grads`` is neither ``[E]`` nor ``[E, d]``, or empty; ``measure`` is not 1-D, not of
        length E, or (when concrete) negative.
      TypeError: an argument is not a numeric array.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm import tv_l1
      >>> tv_l1(jnp.array([1.0, -3.0]))  # (|1| + |-3|)^2 / 4
      Array(4., dtype=float32)
    """
    grads = _grads(grads)
    mu = _measure(measure, grads.shape[0], grads.dtype)
    size = abs0(grads) if grads.ndim == 1 else norm0(grads, axis=1)
    return jnp.sum(mu * size) ** 2


def vrex(risks: ArrayLike, measure: ArrayLike | None = None) -> jax.Array:
    """V-REx penalty: the variance of the environment risks under μ, Σ_e μ_e (R_e − R̄)², R̄ = Σ_e μ_e R_e.

    Args:
      risks: ``[E]`` environment risks (`jaxirm.env_risks`), not gradients.
      measure: ``[E]`` probability vector μ, or None for uniform μ_e = 1/E. Pass `jaxirm.env_measure` when
        there are padding environments: their risk is 0 and would otherwise count.

    Returns:
      Scalar penalty, ≥ 0.

    Raises:
      ValueError: ``risks`` is not 1-D; ``measure`` is not 1-D, not of length E, or (when concrete)
        negative.
      TypeError: an argument is not a numeric array.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxirm import vrex
      >>> vrex(jnp.array([1.0, 3.0]))
      Array(1., dtype=float32)
    """
    risks = _v.check_vector("risks", risks)
    mu = _measure(measure, risks.shape[0], risks.dtype)
    mean = jnp.sum(mu * risks)
    return jnp.sum(mu * (risks - mean) ** 2)


def tv_l2_split(split_grads: ArrayLike, measure: ArrayLike | None = None) -> jax.Array:
    """Unbiased split-batch estimate of `tv_l2`: Σ_e μ_e g^a_e g^b_e.

    The two halves are independent, so E[g^a g^b] = g² on a minibatch (the DomainBed/IRMv1 batch-splitting
    trick). The estimate can be negative; solvers clip it at 0 in the loss as the reference code does.

    Args:
      split_grads: ``[2, E]`` gradients of halves a and b (`jaxirm.split_scale_grads`).
      measure: ``[E]`` probability vector μ, or None for uniform μ_e = 1/E.

    Returns:
      Scalar estimate.

    Raises:
      ValueError: ``split_grads`` is not ``[2, E]``; ``measure`` is not 1-D, not of length E, or (when
        concrete) negative.
      TypeError: an argument is not a numeric array.
    """
    split = _v.check_split("split_grads", split_grads)
    mu = _measure(measure, split.shape[1], split.dtype)
    return jnp.sum(mu * split[0] * split[1])


def tv_l1_split(split_grads: ArrayLike, measure: ArrayLike | None = None) -> jax.Array:
    """Split-batch estimate of `tv_l1`: (Σ_e μ_e √|g^a_e g^b_e|)², as in the released Landcover code.

    √|g^a g^b| estimates |g| (it is the geometric mean of two independent estimates of |g|). Its gradient is
    unbounded as one half's gradient goes to 0; at an exact 0 the subgradient is taken to be 0.

    Args:
      split_grads: ``[2, E]`` gradients of halves a and b (`jaxirm.split_scale_grads`).
      measure: ``[E]`` probability vector μ, or None for uniform μ_e = 1/E.

    Returns:
      Scalar estimate, ≥ 0.

    Raises:
      ValueError: ``split_grads`` is not ``[2, E]``; ``measure`` is not 1-D, not of length E, or (when
        concrete) negative.
      TypeError: an argument is not a numeric array.
    """
    split = _v.check_split("split_grads", split_grads)
    mu = _measure(measure, split.shape[1], split.dtype)
    prod = abs0(split[0] * split[1])
    positive = prod > 0
    root = jnp.where(positive, jnp.sqrt(jnp.where(positive, prod, jnp.ones_like(prod))), 0.0)
    return jnp.sum(mu * root) ** 2
