"""What the checkers of `jaxirm.testing` share: failing with the property's name, and the penalty properties.

The primitives (`fail`, `call`, `scalar`, `assert_close`) turn whatever the function under test does wrong
into an ``AssertionError`` naming the checker and the property. `Subject` runs the properties that
`check_penalty` and `check_split_penalty` have in common on a penalty-like function ``fn(x, measure)`` whose
input ``x`` holds the environments on its last axis (``[E]`` gradients, or ``[2, E]`` split halves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxirm import _validation as _v


def fail(checker: str, prop: str, detail: str) -> NoReturn:
    raise AssertionError(f"{checker}: property '{prop}' failed: {detail}")


def call(checker: str, prop: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls ``fn`` (the function under test); any exception becomes an AssertionError naming the property."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        raise AssertionError(
            f"{checker}: property '{prop}' failed: raised {type(err).__name__}: {err}"
        ) from err


def scalar(checker: str, prop: str, value: Any) -> float:
    """A finite scalar as a Python float, or an AssertionError."""
    if np.shape(value) != ():
        fail(checker, prop, f"expected a scalar, got shape {np.shape(value)}")
    out = float(np.asarray(value))
    if not np.isfinite(out):
        fail(checker, prop, f"expected a finite value, got {out}")
    return out


def assert_close(checker: str, prop: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        fail(checker, prop, f"shape {a.shape} != expected shape {e.shape}")
    tol = atol + rtol * np.maximum(np.abs(a), np.abs(e))
    ok = np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= tol)
    if not np.all(ok):
        fail(checker, prop, f"got {a.tolist()}, expected {e.tolist()} (rtol={rtol}, atol={atol})")


# The checkers build every variant of their input in numpy and hand it over with `jnp.asarray` (a transfer):
# jnp operations on new shapes would each compile a small program before the penalty even runs.
def dev(x: np.ndarray | None) -> jax.Array | None:
    return None if x is None else jnp.asarray(x)


def env_perms(num: int) -> list[tuple[str, np.ndarray]]:
    """Deterministic non-identity permutations of ``range(num)``: reversal and a roll by one."""
    if num < 2:
        return []
    perms = [("reversal", np.arange(num)[::-1].copy()), ("roll", np.roll(np.arange(num), 1))]
    return perms if num > 2 else perms[:1]


def other_point(g: np.ndarray) -> np.ndarray:
    """A second gradient vector, different from ``g`` but zero where it is (for vmap and split checks)."""
    return (-0.5 * np.roll(g, 1) + np.where(g == 0, 0.0, 0.25 * g)).astype(g.dtype)


def with_first_zero(g: np.ndarray) -> np.ndarray:
    out = g.copy()
    out[0] = 0
    return out


def _pad_env_values(values: np.ndarray) -> np.ndarray:
    """Two extra environments (last axis): one with value 0 and one with an arbitrary value."""
    arbitrary = 1.0 + np.max(np.abs(values))
    extra = np.zeros(values.shape[:-1] + (2,), values.dtype)
    extra[..., 1] = arbitrary
    if values.ndim == 2:
        extra[1:, 0] = -arbitrary
    return np.concatenate([values, extra], axis=-1)


def _grads_arg(grads: ArrayLike) -> np.ndarray:
    g = np.asarray(_v.check_vector("grads", grads))
    if g.shape[0] < 1:
        raise ValueError("grads must hold at least one environment")
    return g


def _measure_arg(measure: ArrayLike | None, num_envs: int, dtype: Any) -> np.ndarray | None:
    mu = _v.check_measure(measure, num_envs)
    if mu is None:
        return None
    mu = np.asarray(mu).astype(dtype)
    if not np.all(np.isfinite(mu)):
        raise ValueError("measure must be finite")
    return mu


@dataclass(frozen=True)
class Subject:
    """A penalty-like ``fn(x [..., E], measure [E] | None) -> scalar`` under one checker, at one point.

    Attributes:
      checker: the checker's name, for the error messages.
      fn: the function under test.
      grads: the validated ``[E]`` gradients g of the point.
      measure: the validated ``[E]`` measure μ, or None (uniform).
      rtol: relative tolerance of the comparisons.
      atol: absolute tolerance of the comparisons.
    """

    checker: str
    fn: Callable[..., Any]
    grads: np.ndarray
    measure: np.ndarray | None
    rtol: float
    atol: float

    @classmethod
    def at(
        cls,
        checker: str,
        fn: Callable[..., Any],
        grads: ArrayLike,
        measure: ArrayLike | None,
        rtol: float,
        atol: float,
    ) -> Subject:
        """Validates the point: ``grads`` a non-empty vector, ``measure`` a non-negative finite ``[E]``."""
        g = _grads_arg(grads)
        return cls(checker, fn, g, _measure_arg(measure, g.shape[0], g.dtype), rtol, atol)

    @property
    def uniform(self) -> np.ndarray:
        num = self.grads.shape[0]
        return np.full((num,), 1.0 / num, self.grads.dtype)

    def fail(self, prop: str, detail: str) -> NoReturn:
        fail(self.checker, prop, detail)

    def call(self, prop: str, fn: Callable[..., Any], *arrays: np.ndarray | None) -> Any:
        """``fn`` of the numpy ``arrays`` (moved to the device); an exception fails ``prop``."""
        return call(self.checker, prop, fn, *map(dev, arrays))

    def scalar(self, prop: str, fn: Callable[..., Any], *arrays: np.ndarray | None) -> float:
        """``fn`` of the numpy ``arrays`` as a finite Python float, or ``prop`` fails."""
        return scalar(self.checker, prop, self.call(prop, fn, *arrays))

    def close(self, prop: str, actual: Any, expected: Any) -> None:
        assert_close(self.checker, prop, actual, expected, self.rtol, self.atol)

    def finite_scalar(self, x: np.ndarray) -> float:
        """'finite scalar': the value at ``x`` (under the measure), which the other properties compare to."""
        return self.scalar("finite scalar", self.fn, x, self.measure)

    def zero_at_zero(self, x: np.ndarray, what: str) -> None:
        """'zero at zero': the value is 0 (up to atol) when every entry of ``x`` is 0."""
        at_zero = self.scalar("zero at zero", self.fn, np.zeros_like(x), self.measure)
        if abs(at_zero) > self.atol:
            self.fail("zero at zero", f"{what} is {at_zero}, expected 0")

    def env_invariances(self, x: np.ndarray, value: float) -> None:
        """'permutation invariance (reversal|roll)', 'measure=None is uniform' and 'padding environments'."""
        mu = self.measure
        for label, perm in env_perms(x.shape[-1]):
            prop = f"permutation invariance ({label})"
            self.close(prop, self.call(prop, self.fn, x[..., perm], None if mu is None else mu[perm]), value)
        if mu is None:
            prop = "measure=None is uniform"
            self.close(prop, self.call(prop, self.fn, x, self.uniform), value)
        prop = "padding environments"
        mu_pad = np.concatenate([self.uniform if mu is None else mu, np.zeros((2,), x.dtype)])
        self.close(prop, self.call(prop, self.fn, _pad_env_values(x), mu_pad), value)

    def jit_equals_eager(self, x: np.ndarray, value: float) -> None:
        prop = "jit equals eager"
        self.close(prop, self.call(prop, jax.jit(self.fn), x, self.measure), value)

    def finite_gradients(self, points: Sequence[tuple[str, np.ndarray]], zero_subgradient: bool) -> None:
        """'finite gradient' at each labelled point, then (if asked) 'zero subgradient' where it is 0."""
        grad_fn = jax.grad(self.fn)
        for label, point in points:
            prop = "finite gradient"
            dg = np.asarray(self.call(prop, grad_fn, point, self.measure))
            if dg.shape != point.shape:
                self.fail(prop, f"gradient at {label} has shape {dg.shape}, expected {point.shape}")
            if not np.all(np.isfinite(dg)):
                self.fail(prop, f"gradient at {label} is {dg.tolist()}")
            if zero_subgradient and np.any(dg[point == 0] != 0):
                self.fail(
                    "zero subgradient",
                    f"gradient at {label} is {dg.tolist()} at g = {point.tolist()}; entries where g_e = 0 "
                    "must get gradient exactly 0 (use jaxirm.penalties.abs0, not jnp.abs)",
                )
