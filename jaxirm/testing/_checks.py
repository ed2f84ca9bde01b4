"""The penalty checkers of `jaxirm.testing`: `check_penalty` and `check_split_penalty`.

Both run the properties they share through `jaxirm.testing._properties.Subject`, in the order their docstrings
list them, and raise an ``AssertionError`` naming the first property that fails.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.typing import ArrayLike

from jaxirm.testing._properties import Subject, other_point, with_first_zero


def check_penalty(
    penalty_fn: Callable[[jax.Array, jax.Array | None], jax.Array],
    grads: ArrayLike,
    measure: ArrayLike | None = None,
    *,
    dominated_by: Callable[[jax.Array, jax.Array | None], jax.Array] | None = None,
    zero_subgradient: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Checks the properties of a penalty ``penalty_fn(grads [E], measure [E] | None) -> scalar`` at a point.

    The properties, in the order they are checked (the name in the error message in quotes):

    * 'finite scalar': the value is a finite scalar.
    * 'non-negative': value ≥ −atol.
    * 'zero at zero': exactly 0 (up to atol) when every g_e is 0.
    * 'permutation invariance (reversal|roll)': unchanged when g and μ are permuted together.
    * 'measure=None is uniform': with ``measure=None`` the value equals that under μ_e = 1/E.
    * 'padding environments': appending two environments with μ_e = 0 (one with g_e = 0, one with an
      arbitrary g_e) leaves the value unchanged (with ``measure=None`` against the explicit uniform measure).
    * 'dominated_by': value ≤ ``dominated_by(grads, measure)`` up to the tolerances (e.g. `jaxirm.tv_l2`
      bounds `jaxirm.tv_l1` by Jensen, (E|g|)² ≤ E g²).
    * 'jit equals eager': ``jax.jit(penalty_fn)`` gives the same value.
    * 'vmap equals loop': `jax.vmap` over a stack of two gradient vectors (and of two measures) gives the
      per-item values.
    * 'finite gradient': `jax.grad` w.r.t. grads is finite at grads, at zero and at grads with g_0 = 0.
    * 'zero subgradient': where g_e = 0 the gradient w.r.t. g_e is exactly 0 (the papers' subgradient of |g|
      at 0; `jax.grad(jnp.abs)(0.)` is 1), at grads and at grads with g_0 = 0. Turn off for penalties whose
      gradient need not vanish there, such as `jaxirm.vrex` (a function of risks, not gradients).

    An exception raised by ``penalty_fn`` while checking a property is reported as that property failing.

    Args:
      penalty_fn: the penalty; it must accept ``measure=None`` (uniform) and zero entries in μ.
      grads: ``[E]`` environment gradients (or risks for `jaxirm.vrex`-like penalties).
      measure: ``[E]`` probability vector, or None.
      dominated_by: optional penalty of the same signature that bounds ``penalty_fn`` from above.
      zero_subgradient: check the zero subgradient at g_e = 0.
      rtol: relative tolerance of the comparisons.
      atol: absolute tolerance of the comparisons.

    Raises:
      AssertionError: a property fails; the message names it.
      ValueError, TypeError: ``grads`` is not a non-empty vector or ``measure`` is not a non-negative finite
        ``[E]`` vector.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.testing import check_penalty
      >>> check_penalty(jaxirm.tv_l1, jnp.array([0.5, 0.0, -1.0]), dominated_by=jaxirm.tv_l2)
      >>> check_penalty(lambda g, mu: -jaxirm.tv_l2(g, mu), jnp.array([0.5, 0.0, -1.0]))
      Traceback (most recent call last):
      ...
      AssertionError: check_penalty: property 'non-negative' failed: ...
    """
    s = Subject.at("check_penalty", penalty_fn, grads, measure, rtol, atol)
    g, mu = s.grads, s.measure
    value = s.finite_scalar(g)
    if value < -atol:
        s.fail("non-negative", f"penalty is {value} < 0")
    s.zero_at_zero(g, "penalty at g = 0")
    s.env_invariances(g, value)

    if dominated_by is not None:
        prop = "dominated_by"
        bound = s.scalar(prop, dominated_by, g, mu)
        if value > bound + atol + rtol * abs(bound):
            s.fail(prop, f"penalty {value} exceeds its bound {bound}")

    s.jit_equals_eager(g, value)

    prop = "vmap equals loop"
    other = other_point(g)
    stacked = np.stack([g, other])
    other_value = s.scalar(prop, penalty_fn, other, mu)
    s.close(prop, s.call(prop, jax.vmap(penalty_fn, in_axes=(0, None)), stacked, mu), [value, other_value])
    if mu is not None:
        mu_other = mu[::-1].copy()
        other_value = s.scalar(prop, penalty_fn, other, mu_other)
        batched = s.call(prop, jax.vmap(penalty_fn), stacked, np.stack([mu, mu_other]))
        s.close(prop, batched, [value, other_value])

    points = [("grads", g), ("zero", np.zeros_like(g)), ("grads with g_0 = 0", with_first_zero(g))]
    s.finite_gradients(points, zero_subgradient)


def check_split_penalty(
    split_fn: Callable[[jax.Array, jax.Array | None], jax.Array],
    full_fn: Callable[[jax.Array, jax.Array | None], jax.Array],
    grads: ArrayLike,
    measure: ArrayLike | None = None,
    *,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Checks a split-batch estimator ``split_fn(split [2, E], measure) -> scalar`` against its full penalty.

    With g = ``grads`` and a second vector h derived from it, the properties (in order) are:

    * 'finite scalar': ``split_fn(stack([g, h]), μ)`` is a finite scalar.
    * 'equal halves': ``split_fn(stack([g, g]), μ) == full_fn(g, μ)`` (both halves agree, so the estimate
      is the penalty).
    * 'zero at zero': 0 when both halves are 0.
    * 'swap halves': ``split_fn`` is unchanged when the halves a and b are swapped.
    * 'permutation invariance (reversal|roll)': unchanged when the columns and μ are permuted together.
    * 'measure=None is uniform' and 'padding environments': as in `check_penalty`.
    * 'jit equals eager'.
    * 'finite gradient': `jax.grad` is finite at (g, g), (g, h), (g, 0), (0, 0) and (g', g') where g' is g
      with g_0 = 0.

    Args:
      split_fn: the estimator, e.g. `jaxirm.tv_l1_split`.
      full_fn: the penalty it estimates, e.g. `jaxirm.tv_l1`.
      grads: ``[E]`` environment gradients g.
      measure: ``[E]`` probability vector, or None.
      rtol: relative tolerance of the comparisons.
      atol: absolute tolerance of the comparisons.

    Raises:
      AssertionError: a property fails; the message names it.
      ValueError, TypeError: invalid ``grads`` or ``measure``, as in `check_penalty`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.testing import check_split_penalty
      >>> check_split_penalty(jaxirm.tv_l1_split, jaxirm.tv_l1, jnp.array([0.5, 0.0, -1.0]))
    """
    s = Subject.at("check_split_penalty", split_fn, grads, measure, rtol, atol)
    g, mu = s.grads, s.measure
    same = np.stack([g, g])
    mixed = np.stack([g, other_point(g)])
    value = s.finite_scalar(mixed)

    prop = "equal halves"
    s.close(prop, s.scalar(prop, split_fn, same, mu), s.scalar(prop, full_fn, g, mu))
    s.zero_at_zero(same, "estimate with both halves 0")
    prop = "swap halves"
    s.close(prop, s.call(prop, split_fn, mixed[::-1].copy(), mu), value)
    s.env_invariances(mixed, value)
    s.jit_equals_eager(mixed, value)

    zeros = np.zeros_like(g)
    g0 = with_first_zero(g)
    points = [
        ("(g, g)", same),
        ("(g, h)", mixed),
        ("(g, 0)", np.stack([g, zeros])),
        ("(0, 0)", np.stack([zeros, zeros])),
        ("(g', g') with g'_0 = 0", np.stack([g0, g0])),
    ]
    s.finite_gradients(points, zero_subgradient=False)
