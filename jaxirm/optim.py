"""optax extras: the OOD-TV paper's convergent step η_k = 1/(k^p ‖g‖) (Theorem 3) as a transformation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["ConvergentStepState", "scale_by_convergent_step", "convergent_sgd"]


class ConvergentStepState(NamedTuple):
    """State of `scale_by_convergent_step`.

    Attributes:
      count: int32 scalar, the number of updates taken so far (k − 1).
    """

    count: jax.Array


def _check_power(power: float) -> float:
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not power > 0:
        raise ValueError(
            f"power must be a positive number (p > 1 for the convergence guarantee), got {power}"
        )
    return float(power)


def scale_by_convergent_step(
    power: float = 1.0001, *, per_tensor: bool = False
) -> optax.GradientTransformation:
    """Scales the gradient g at step k = 1, 2, … to g / (k^p ‖g‖₂), and to 0 where ‖g‖ = 0.

    Every update then has norm k^{-p} (per tensor when ``per_tensor``), so for p > 1 the steps are summable,
    the iterates are Cauchy and converge (Wang, Lai & Zhong 2025, Theorem 3). The norm is the global norm
    over the whole pytree by default (the paper's ‖∇_Ψ g‖₂); ``per_tensor=True`` normalises every leaf on its
    own, as the released Colored MNIST code does.

    Args:
      power: the exponent p > 0 (p > 1 for the convergence guarantee; the released code uses 1.0001).
      per_tensor: normalise each leaf separately instead of by the global norm.

    Returns:
      An `optax.GradientTransformation` (no sign flip: chain it with a negative scale for descent, or use
      `convergent_sgd`).

    Raises:
      ValueError: ``power`` is not a positive number.
    """
    power = _check_power(power)

    def init_fn(params):
        del params
        return ConvergentStepState(count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        k = (state.count + 1).astype(jnp.float32)
        decay = k ** (-power)

        def scale(leaf, norm):
            safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))
            return jnp.where(norm > 0, leaf * (decay / safe).astype(leaf.dtype), jnp.zeros_like(leaf))

        if per_tensor:
            updates = jax.tree_util.tree_map(lambda u: scale(u, jnp.linalg.norm(jnp.ravel(u))), updates)
        else:
            norm = optax.tree.norm(updates)
            updates = jax.tree_util.tree_map(lambda u: scale(u, norm), updates)
        return updates, ConvergentStepState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def convergent_sgd(
    learning_rate: float = 1.0, power: float = 1.0001, *, per_tensor: bool = False
) -> optax.GradientTransformation:
    """Descent with the convergent step: θ_{k+1} = θ_k − lr · g_k / (k^p ‖g_k‖₂).

    The OOD-TV paper's dual update (eq. 18 with Theorem 3's η₂) is this applied to the *negated* gradient of
    the objective (ascent is descent on the negation), which is what the solvers do for λ_Ψ and ρ.

    Args:
      learning_rate: a scale lr > 0 on the paper's step (the released code's ``lr2``); a float or an
        optax schedule.
      power: the exponent p (p > 1 for the convergence guarantee).
      per_tensor: normalise each parameter leaf separately.

    Returns:
      An `optax.GradientTransformation`.

    Raises:
      ValueError: ``power`` is not positive, or a float ``learning_rate`` is not positive.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> opt = convergent_sgd(1.0, power=2.0)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> upd, state = opt.update(jnp.array([3.0, 4.0]), state)
      >>> upd  # step 1: norm 1/1^2
      Array([-0.6, -0.8], dtype=float32)
      >>> upd, state = opt.update(jnp.array([3.0, 4.0]), state)
      >>> float(jnp.linalg.norm(upd))  # step 2: norm 1/2^2
      0.25
    """
    if isinstance(learning_rate, (int, float)) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    return optax.chain(
        scale_by_convergent_step(power, per_tensor=per_tensor),
        optax.scale_by_learning_rate(learning_rate),
    )
