"""Hypothesis strategies and property checkers for penalties, split estimators and environment pipelines.

For users who property-test their own penalties and solvers with hypothesis. Two halves:

* **Strategies** draw the inputs of the maths contract: environment labels and soft weights (with padding
  environments and padding examples), logits and targets for the three built-in losses, probability measures,
  environment gradients, and whole problems. Shapes come from a few buckets (`SIZE_BUCKETS`, `ENV_BUCKETS`,
  `CLASS_BUCKETS`) because `jax.jit` compiles once per new shape.
* **Checkers** run the properties every penalty of this library satisfies on given inputs and raise an
  `AssertionError` naming the property that failed: `check_penalty` (g, μ) -> scalar, `check_split_penalty`
  for split-batch estimators, and `check_env_pipeline` for the whole loss -> `scale_grads` -> penalty path.

hypothesis is not a core dependency: install the ``test`` extra (``pip install -e ".[test]"`` in the clone).

Examples:
  >>> from hypothesis import given
  >>> import jaxirm
  >>> from jaxirm import testing
  >>> @given(testing.env_grads(3), testing.measures(3))
  ... def test_tv_l1(g, mu):
  ...     testing.check_penalty(jaxirm.tv_l1, g, mu, dominated_by=jaxirm.tv_l2)
  >>> test_tv_l1()
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without the test extra
    raise ImportError('jaxirm.testing needs hypothesis: pip install -e ".[test]" in the clone') from err

from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxirm import _validation as _v
from jaxirm import losses as _losses
from jaxirm.envs import MEASURE_KINDS, env_measure
from jaxirm.risks import scale_grads

__all__ = [
    "SIZE_BUCKETS",
    "ENV_BUCKETS",
    "CLASS_BUCKETS",
    "LOSS_KINDS",
    "Problem",
    "sizes",
    "env_counts",
    "class_counts",
    "env_labels",
    "env_weights",
    "env_assignments",
    "logits",
    "targets",
    "measures",
    "env_grads",
    "problems",
    "check_penalty",
    "check_split_penalty",
    "check_env_pipeline",
]

#: Numbers of examples n that the strategies draw from (one jit compilation per bucket).
SIZE_BUCKETS = (8, 32, 128)
#: Numbers of environments E that the strategies draw from.
ENV_BUCKETS = (1, 2, 3, 5, 8)
#: Numbers of classes C for multi-class problems.
CLASS_BUCKETS = (2, 3, 5)
#: Loss kinds of the built-in losses, as accepted by `targets` and `problems`.
LOSS_KINDS = (_v.BINARY, _v.REGRESSION, _v.MULTICLASS)

_LOSSES = {
    _v.BINARY: _losses.bce_with_logits,
    _v.REGRESSION: _losses.squared_error,
    _v.MULTICLASS: _losses.softmax_cross_entropy,
}

# Positive soft weights and measure entries stay within a factor 1024 of each other: the properties are about
# structure (padding, permutations), and extreme ratios only test float32 rounding.
_MIN_WEIGHT = 2.0**-10


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _float32_bound(name: str, value: Any) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(np.float32(value))


# ----------------------------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------------------------


def sizes() -> st.SearchStrategy[int]:
    """Numbers of examples n, drawn from `SIZE_BUCKETS`.

    Returns:
      A strategy of Python ints.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import SIZE_BUCKETS, sizes
      >>> @given(sizes())
      ... def test_n(n):
      ...     assert n in SIZE_BUCKETS
      >>> test_n()
    """
    return st.sampled_from(SIZE_BUCKETS)


def env_counts() -> st.SearchStrategy[int]:
    """Numbers of environments E, drawn from `ENV_BUCKETS`.

    Returns:
      A strategy of Python ints.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import ENV_BUCKETS, env_counts
      >>> @given(env_counts())
      ... def test_e(num_envs):
      ...     assert num_envs in ENV_BUCKETS
      >>> test_e()
    """
    return st.sampled_from(ENV_BUCKETS)


def class_counts() -> st.SearchStrategy[int]:
    """Numbers of classes C for multi-class problems, drawn from `CLASS_BUCKETS`.

    Returns:
      A strategy of Python ints.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import CLASS_BUCKETS, class_counts
      >>> @given(class_counts())
      ... def test_c(num_classes):
      ...     assert num_classes in CLASS_BUCKETS
      >>> test_c()
    """
    return st.sampled_from(CLASS_BUCKETS)


def env_labels(n: int, num_envs: int, *, all_present: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Integer environment labels.

    Without ``all_present`` the labels are drawn from a random non-empty subset of the environments, so
    environments that never occur (padding environments, μ_e = 0 under `jaxirm.env_measure`) are common.

    Args:
      n: number of examples.
      num_envs: number of environments E.
      all_present: every environment occurs at least once (when ``n >= num_envs``; otherwise ignored).

    Returns:
      A strategy of ``np.int32`` arrays of shape ``[n]`` with values in ``[0, num_envs)``.

    Raises:
      TypeError, ValueError: ``n`` or ``num_envs`` is not a positive int.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import env_labels
      >>> @given(env_labels(8, 3, all_present=True))
      ... def test_labels(labels):
      ...     assert labels.shape == (8,) and set(labels.tolist()) == {0, 1, 2}
      >>> test_labels()
    """
    n = _positive_int("n", n)
    num = _positive_int("num_envs", num_envs)

    @st.composite
    def draw_labels(draw) -> np.ndarray:
        if all_present and n >= num:
            rest = draw(hnp.arrays(np.int32, n - num, elements=st.integers(0, num - 1)))
            labels = np.concatenate([np.arange(num, dtype=np.int32), rest])
            order = draw(st.permutations(range(n)))
            return labels[np.asarray(order, dtype=np.intp)]
        active = draw(st.lists(st.integers(0, num - 1), min_size=1, max_size=num, unique=True))
        return draw(hnp.arrays(np.int32, n, elements=st.sampled_from(sorted(active))))

    return draw_labels()


def env_weights(n: int, num_envs: int, *, padding: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Soft environment weights A (non-negative, rows need not sum to 1).

    Entries are 0, 1 or in [2⁻¹⁰, 1]. With ``padding`` some columns (padding environments) and some rows
    (padding examples) may be exactly zero, but at least one column always keeps mass. Without ``padding``
    every row and every column has a positive entry.

    Args:
      n: number of examples.
      num_envs: number of environments E.
      padding: allow all-zero columns and rows.

    Returns:
      A strategy of ``np.float32`` arrays of shape ``[n, num_envs]``.

    Raises:
      TypeError, ValueError: ``n`` or ``num_envs`` is not a positive int.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import env_weights
      >>> @given(env_weights(8, 3))
      ... def test_weights(w):
      ...     assert w.shape == (8, 3) and (w >= 0).all() and w.sum() > 0
      >>> test_weights()
    """
    n = _positive_int("n", n)
    num = _positive_int("num_envs", num_envs)
    elements = st.one_of(
        st.just(0.0), st.just(1.0), st.floats(_MIN_WEIGHT, 1.0, width=32, allow_subnormal=False)
    )

    @st.composite
    def draw_weights(draw) -> np.ndarray:
        w = np.array(draw(hnp.arrays(np.float32, (n, num), elements=elements)), dtype=np.float32)
        if padding:
            pad_cols = sorted(draw(st.sets(st.integers(0, num - 1), max_size=num - 1)))
            pad_rows = sorted(draw(st.sets(st.integers(0, n - 1), max_size=n - 1)))
            w[:, pad_cols] = 0.0
            w[pad_rows, :] = 0.0
            if not w.any():
                row = min(set(range(n)) - set(pad_rows))
                col = min(set(range(num)) - set(pad_cols))
                w[row, col] = 1.0
        else:
            for i in np.flatnonzero(w.sum(axis=1) == 0):
                w[i, i % num] = 1.0
            for e in np.flatnonzero(w.sum(axis=0) == 0):
                w[e % n, e] = 1.0
        return w

    return draw_weights()


def env_assignments(n: int, num_envs: int, *, padding: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Either representation of an environment assignment: `env_labels` or `env_weights`.

    Args:
      n: number of examples.
      num_envs: number of environments E.
      padding: allow environments without mass (and, for weights, zero rows). Without it labels have every
        environment present (when ``n >= num_envs``).

    Returns:
      A strategy of ``np.int32`` ``[n]`` labels or ``np.float32`` ``[n, num_envs]`` weights.

    Raises:
      TypeError, ValueError: ``n`` or ``num_envs`` is not a positive int.

    Examples:
      >>> from hypothesis import given
      >>> import jaxirm
      >>> from jaxirm.testing import env_assignments
      >>> @given(env_assignments(8, 3))
      ... def test_mass(envs):
      ...     assert float(jaxirm.env_mass(envs, 3).sum()) > 0
      >>> test_mass()
    """
    return st.one_of(
        env_labels(n, num_envs, all_present=not padding), env_weights(n, num_envs, padding=padding)
    )


def logits(n: int, num_classes: int | None = None, *, max_abs: float = 5.0) -> st.SearchStrategy[np.ndarray]:
    """Real model outputs f with ``|f| <= max_abs``.

    Args:
      n: number of examples.
      num_classes: None for ``[n]`` logits (binary, regression), else the number of classes C.
      max_abs: bound on the absolute value.

    Returns:
      A strategy of ``np.float32`` arrays of shape ``[n]`` or ``[n, num_classes]``.

    Raises:
      TypeError, ValueError: ``n`` or ``num_classes`` is not a positive int, or ``max_abs`` is not positive.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import logits
      >>> @given(logits(8, 3, max_abs=2.0))
      ... def test_logits(f):
      ...     assert f.shape == (8, 3) and abs(f).max() <= 2.0
      >>> test_logits()
    """
    n = _positive_int("n", n)
    bound = _float32_bound("max_abs", max_abs)
    shape = (n,) if num_classes is None else (n, _positive_int("num_classes", num_classes))
    elements = st.floats(-bound, bound, width=32, allow_subnormal=False)
    return hnp.arrays(np.float32, shape, elements=elements)


def targets(
    n: int, kind: str, num_classes: int | None = None, *, max_abs: float = 5.0
) -> st.SearchStrategy[np.ndarray]:
    """Targets y for a loss kind.

    Args:
      n: number of examples.
      kind: ``"binary"`` (float32 0/1 labels for `jaxirm.losses.bce_with_logits`), ``"regression"`` (float32
        in ``[-max_abs, max_abs]`` for `jaxirm.losses.squared_error`) or ``"multiclass"`` (int32 class labels
        in ``[0, num_classes)`` for `jaxirm.losses.softmax_cross_entropy`).
      num_classes: the number of classes C; required for ``"multiclass"`` only.
      max_abs: bound on regression targets.

    Returns:
      A strategy of arrays of shape ``[n]``.

    Raises:
      ValueError: unknown ``kind``, or ``"multiclass"`` without ``num_classes``.
      TypeError: ``n`` or ``num_classes`` is not an int.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import targets
      >>> @given(targets(8, "multiclass", 3))
      ... def test_y(y):
      ...     assert y.dtype == "int32" and 0 <= y.min() and y.max() < 3
      >>> test_y()
    """
    n = _positive_int("n", n)
    if kind == _v.BINARY:
        return hnp.arrays(np.float32, n, elements=st.sampled_from([0.0, 1.0]))
    if kind == _v.REGRESSION:
        bound = _float32_bound("max_abs", max_abs)
        return hnp.arrays(np.float32, n, elements=st.floats(-bound, bound, width=32, allow_subnormal=False))
    if kind == _v.MULTICLASS:
        if num_classes is None:
            raise ValueError('targets(kind="multiclass") needs num_classes')
        num = _positive_int("num_classes", num_classes)
        return hnp.arrays(np.int32, n, elements=st.integers(0, num - 1))
    raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")


def measures(num_envs: int, *, allow_zero: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Probability vectors μ over the environments.

    Positive entries lie within a factor 1024 of each other before normalisation.

    Args:
      num_envs: number of environments E.
      allow_zero: let some entries be exactly 0 (at least one stays positive).

    Returns:
      A strategy of ``np.float32`` arrays of shape ``[num_envs]``, non-negative and summing to 1 (up to
      float32 rounding).

    Raises:
      TypeError, ValueError: ``num_envs`` is not a positive int.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import measures
      >>> @given(measures(4))
      ... def test_mu(mu):
      ...     assert mu.shape == (4,) and (mu >= 0).all() and abs(mu.sum() - 1) < 1e-6
      >>> test_mu()
    """
    num = _positive_int("num_envs", num_envs)
    positive = st.floats(_MIN_WEIGHT, 1.0, allow_subnormal=False)
    elements = st.one_of(st.just(0.0), positive) if allow_zero else positive

    @st.composite
    def draw_measure(draw) -> np.ndarray:
        w = np.array(draw(hnp.arrays(np.float64, num, elements=elements)), dtype=np.float64)
        if not w.any():
            w[draw(st.integers(0, num - 1))] = 1.0
        return (w / w.sum()).astype(np.float32)

    return draw_measure()


def env_grads(num_envs: int, *, max_abs: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    """Environment gradients g, often with exact zeros (to exercise the subgradient of |g| at 0).

    Args:
      num_envs: number of environments E.
      max_abs: bound on ``|g_e|``.

    Returns:
      A strategy of ``np.float32`` arrays of shape ``[num_envs]``.

    Raises:
      TypeError, ValueError: ``num_envs`` is not a positive int, or ``max_abs`` is not positive.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import env_grads
      >>> @given(env_grads(5))
      ... def test_g(g):
      ...     assert g.shape == (5,) and abs(g).max() <= 1.0
      >>> test_g()
    """
    num = _positive_int("num_envs", num_envs)
    bound = _float32_bound("max_abs", max_abs)
    elements = st.one_of(st.just(0.0), st.floats(-bound, bound, width=32, allow_subnormal=False))
    return hnp.arrays(np.float32, num, elements=elements)


class Problem(NamedTuple):
    """A whole pipeline input, as drawn by `problems`.

    Attributes:
      loss_fn: a built-in loss from `jaxirm.losses` matching the targets.
      logits: ``np.float32`` ``[n]`` or ``[n, C]``.
      y: ``[n]`` targets (see `targets`).
      envs: ``np.int32`` labels ``[n]`` or ``np.float32`` weights ``[n, E]``.
      num_envs: the number of environments E (a Python int; valid for both representations).
    """

    loss_fn: Callable[[jax.Array, jax.Array], jax.Array]
    logits: np.ndarray
    y: np.ndarray
    envs: np.ndarray
    num_envs: int


def problems(kind: str | None = None, *, padding: bool = True) -> st.SearchStrategy[Problem]:
    """Whole pipeline inputs (loss, logits, targets, environments) with shapes from the buckets.

    Args:
      kind: ``"binary"``, ``"regression"``, ``"multiclass"``, or None to draw one of them. The loss is
        `jaxirm.losses.bce_with_logits`, `jaxirm.losses.squared_error` or
        `jaxirm.losses.softmax_cross_entropy` respectively.
      padding: passed to `env_assignments`.

    Returns:
      A strategy of `Problem`.

    Raises:
      ValueError: unknown ``kind``.

    Examples:
      >>> from hypothesis import given
      >>> import jaxirm
      >>> from jaxirm.testing import problems
      >>> @given(problems("multiclass"))
      ... def test_shapes(p):
      ...     assert p.loss_fn is jaxirm.losses.softmax_cross_entropy
      ...     assert p.logits.shape == (p.y.shape[0], p.logits.shape[1]) and p.envs.shape[0] == p.y.shape[0]
      >>> test_shapes()
    """
    if kind is not None and kind not in LOSS_KINDS:
        raise ValueError(f"kind must be None or one of {LOSS_KINDS}, got {kind!r}")

    @st.composite
    def draw_problem(draw) -> Problem:
        k = kind if kind is not None else draw(st.sampled_from(LOSS_KINDS))
        n = draw(sizes())
        num = draw(env_counts())
        num_classes = draw(class_counts()) if k == _v.MULTICLASS else None
        f = draw(logits(n, num_classes))
        y = draw(targets(n, k, num_classes))
        envs = draw(env_assignments(n, num, padding=padding))
        return Problem(_LOSSES[k], f, y, envs, num)

    return draw_problem()


# ----------------------------------------------------------------------------------------------------------
# Checkers
# ----------------------------------------------------------------------------------------------------------


def _fail(checker: str, prop: str, detail: str) -> NoReturn:
    raise AssertionError(f"{checker}: property '{prop}' failed: {detail}")


def _call(checker: str, prop: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls ``fn`` (the function under test); any exception becomes an AssertionError naming the property."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        raise AssertionError(
            f"{checker}: property '{prop}' failed: raised {type(err).__name__}: {err}"
        ) from err


def _scalar(checker: str, prop: str, value: Any) -> float:
    """A finite scalar as a Python float, or an AssertionError."""
    if np.shape(value) != ():
        _fail(checker, prop, f"expected a scalar, got shape {np.shape(value)}")
    out = float(np.asarray(value))
    if not np.isfinite(out):
        _fail(checker, prop, f"expected a finite value, got {out}")
    return out


def _assert_close(checker: str, prop: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        _fail(checker, prop, f"shape {a.shape} != expected shape {e.shape}")
    tol = atol + rtol * np.maximum(np.abs(a), np.abs(e))
    ok = np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= tol)
    if not np.all(ok):
        _fail(checker, prop, f"got {a.tolist()}, expected {e.tolist()} (rtol={rtol}, atol={atol})")


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


# The checkers build every variant of their input in numpy and hand it over with `jnp.asarray` (a transfer):
# jnp operations on new shapes would each compile a small program before the penalty even runs.
def _dev(x: np.ndarray | None) -> jax.Array | None:
    return None if x is None else jnp.asarray(x)


def _env_perms(num: int) -> list[tuple[str, np.ndarray]]:
    """Deterministic non-identity permutations of ``range(num)``: reversal and a roll by one."""
    if num < 2:
        return []
    perms = [("reversal", np.arange(num)[::-1].copy()), ("roll", np.roll(np.arange(num), 1))]
    return perms if num > 2 else perms[:1]


def _other_point(g: np.ndarray) -> np.ndarray:
    """A second gradient vector, different from ``g`` but zero where it is (for vmap and split checks)."""
    return (-0.5 * np.roll(g, 1) + np.where(g == 0, 0.0, 0.25 * g)).astype(g.dtype)


def _with_first_zero(g: np.ndarray) -> np.ndarray:
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
    name = "check_penalty"
    g = _grads_arg(grads)
    num = g.shape[0]
    mu = _measure_arg(measure, num, g.dtype)
    uniform = np.full((num,), 1.0 / num, g.dtype)
    mu_full = uniform if mu is None else mu
    g_dev, mu_dev = _dev(g), _dev(mu)

    value = _scalar(name, "finite scalar", _call(name, "finite scalar", penalty_fn, g_dev, mu_dev))
    if value < -atol:
        _fail(name, "non-negative", f"penalty is {value} < 0")
    zeros = np.zeros_like(g)
    at_zero = _scalar(name, "zero at zero", _call(name, "zero at zero", penalty_fn, _dev(zeros), mu_dev))
    if abs(at_zero) > atol:
        _fail(name, "zero at zero", f"penalty at g = 0 is {at_zero}, expected 0")

    for label, perm in _env_perms(num):
        prop = f"permutation invariance ({label})"
        permuted = _call(name, prop, penalty_fn, _dev(g[perm]), None if mu is None else _dev(mu[perm]))
        _assert_close(name, prop, permuted, value, rtol, atol)

    if mu is None:
        prop = "measure=None is uniform"
        _assert_close(name, prop, _call(name, prop, penalty_fn, g_dev, _dev(uniform)), value, rtol, atol)
    prop = "padding environments"
    mu_pad = np.concatenate([mu_full, np.zeros((2,), g.dtype)])
    padded = _call(name, prop, penalty_fn, _dev(_pad_env_values(g)), _dev(mu_pad))
    _assert_close(name, prop, padded, value, rtol, atol)

    if dominated_by is not None:
        prop = "dominated_by"
        bound = _scalar(name, prop, _call(name, prop, dominated_by, g_dev, mu_dev))
        if value > bound + atol + rtol * abs(bound):
            _fail(name, prop, f"penalty {value} exceeds its bound {bound}")

    prop = "jit equals eager"
    _assert_close(name, prop, _call(name, prop, jax.jit(penalty_fn), g_dev, mu_dev), value, rtol, atol)

    prop = "vmap equals loop"
    other = _other_point(g)
    stacked = _dev(np.stack([g, other]))
    other_value = _scalar(name, prop, _call(name, prop, penalty_fn, _dev(other), mu_dev))
    batched = _call(name, prop, jax.vmap(penalty_fn, in_axes=(0, None)), stacked, mu_dev)
    _assert_close(name, prop, batched, np.array([value, other_value]), rtol, atol)
    if mu is not None:
        mu_other = mu[::-1].copy()
        other_value = _scalar(name, prop, _call(name, prop, penalty_fn, _dev(other), _dev(mu_other)))
        batched = _call(name, prop, jax.vmap(penalty_fn), stacked, _dev(np.stack([mu, mu_other])))
        _assert_close(name, prop, batched, np.array([value, other_value]), rtol, atol)

    grad_fn = jax.grad(penalty_fn)
    points = [("grads", g), ("zero", zeros), ("grads with g_0 = 0", _with_first_zero(g))]
    for label, point in points:
        prop = "finite gradient"
        dg = np.asarray(_call(name, prop, grad_fn, _dev(point), mu_dev))
        if dg.shape != (num,):
            _fail(name, prop, f"gradient at {label} has shape {dg.shape}, expected ({num},)")
        if not np.all(np.isfinite(dg)):
            _fail(name, prop, f"gradient at {label} is {dg.tolist()}")
        if zero_subgradient and np.any(dg[point == 0] != 0):
            _fail(
                name,
                "zero subgradient",
                f"gradient at {label} is {dg.tolist()} at g = {point.tolist()}; entries where g_e = 0 "
                "must get gradient exactly 0 (use jaxirm.penalties.abs0, not jnp.abs)",
            )


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
      ValueError, TypeError: ``grads`` is not a non-empty vector or ``measure`` is not a non-negative finite
        ``[E]`` vector.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.testing import check_split_penalty
      >>> check_split_penalty(jaxirm.tv_l1_split, jaxirm.tv_l1, jnp.array([0.5, 0.0, -1.0]))
    """
    name = "check_split_penalty"
    g = _grads_arg(grads)
    num = g.shape[0]
    mu = _measure_arg(measure, num, g.dtype)
    uniform = np.full((num,), 1.0 / num, g.dtype)
    mu_full = uniform if mu is None else mu
    mu_dev = _dev(mu)
    h = _other_point(g)
    same = np.stack([g, g])
    mixed = np.stack([g, h])

    value = _scalar(name, "finite scalar", _call(name, "finite scalar", split_fn, _dev(mixed), mu_dev))

    prop = "equal halves"
    split_value = _scalar(name, prop, _call(name, prop, split_fn, _dev(same), mu_dev))
    full_value = _scalar(name, prop, _call(name, prop, full_fn, _dev(g), mu_dev))
    _assert_close(name, prop, split_value, full_value, rtol, atol)

    prop = "zero at zero"
    at_zero = _scalar(name, prop, _call(name, prop, split_fn, _dev(np.zeros_like(same)), mu_dev))
    if abs(at_zero) > atol:
        _fail(name, prop, f"estimate with both halves 0 is {at_zero}, expected 0")

    prop = "swap halves"
    _assert_close(
        name, prop, _call(name, prop, split_fn, _dev(mixed[::-1].copy()), mu_dev), value, rtol, atol
    )

    for label, perm in _env_perms(num):
        prop = f"permutation invariance ({label})"
        permuted = _call(name, prop, split_fn, _dev(mixed[:, perm]), None if mu is None else _dev(mu[perm]))
        _assert_close(name, prop, permuted, value, rtol, atol)

    if mu is None:
        prop = "measure=None is uniform"
        _assert_close(name, prop, _call(name, prop, split_fn, _dev(mixed), _dev(uniform)), value, rtol, atol)
    prop = "padding environments"
    mu_pad = np.concatenate([mu_full, np.zeros((2,), g.dtype)])
    padded = _call(name, prop, split_fn, _dev(_pad_env_values(mixed)), _dev(mu_pad))
    _assert_close(name, prop, padded, value, rtol, atol)

    prop = "jit equals eager"
    _assert_close(name, prop, _call(name, prop, jax.jit(split_fn), _dev(mixed), mu_dev), value, rtol, atol)

    prop = "finite gradient"
    grad_fn = jax.grad(split_fn)
    zeros = np.zeros_like(g)
    g0 = _with_first_zero(g)
    points = [
        ("(g, g)", same),
        ("(g, h)", mixed),
        ("(g, 0)", np.stack([g, zeros])),
        ("(0, 0)", np.stack([zeros, zeros])),
        ("(g', g') with g'_0 = 0", np.stack([g0, g0])),
    ]
    for label, point in points:
        dg = np.asarray(_call(name, prop, grad_fn, _dev(point), mu_dev))
        if dg.shape != (2, num):
            _fail(name, prop, f"gradient at {label} has shape {dg.shape}, expected (2, {num})")
        if not np.all(np.isfinite(dg)):
            _fail(name, prop, f"gradient at {label} is {dg.tolist()}")


def _pipeline(penalty_fn, loss_fn, kind, num_envs, logits, y, envs):
    grads = scale_grads(loss_fn, logits, y, envs, num_envs)
    return penalty_fn(grads, env_measure(envs, num_envs, kind))


def _row_perms(n: int) -> list[tuple[str, np.ndarray]]:
    if n < 2:
        return []
    return [("reversal", np.arange(n)[::-1].copy()), ("roll", np.roll(np.arange(n), n // 2 + 1))]


def _same_shape_variants(logits, y, envs, num_envs):
    """(property, logits, y, envs) of relabelled environments and permuted examples: the input's shapes.

    All arrays are numpy (see `_dev`).
    """
    labels = envs.ndim == 1
    out = []
    for label, perm in _env_perms(num_envs):
        relabelled = perm.astype(envs.dtype)[envs] if labels else envs[:, perm]
        out.append((f"relabel environments ({label})", logits, y, relabelled))
    for label, perm in _row_perms(logits.shape[0]):
        out.append((f"permute examples ({label})", logits[perm], y[perm], envs[perm]))
    return out


def _one_hot(labels, num_envs, dtype):
    return np.eye(num_envs, dtype=dtype)[labels]


def _pad_envs(weights, num_pad=2):
    return np.concatenate([weights, np.zeros((weights.shape[0], num_pad), weights.dtype)], axis=1)


def _pad_examples(logits, y, weights):
    """Appends zero-weight rows with arbitrary, valid logits and targets (earlier rows reversed, rescaled)."""
    k = min(logits.shape[0], 3)
    f_pad = np.concatenate([logits, (0.5 - 2.0 * logits[:k][::-1]).astype(logits.dtype)])
    y_pad = np.concatenate([y, y[:k][::-1]])
    w_pad = np.concatenate([weights, np.zeros((k, weights.shape[1]), weights.dtype)])
    return f_pad, y_pad, w_pad


def _padding_variants(logits, y, envs, num_envs):
    """(property, logits, y, envs, num_envs) of the padding properties, one by one (numpy)."""
    if envs.ndim == 1:
        weights = _one_hot(envs, num_envs, logits.dtype)
        out = [
            ("labels equal one-hot weights", logits, y, weights, num_envs),
            ("padding environments", logits, y, envs, num_envs + 2),
        ]
    else:
        weights = envs
        out = [("padding environments", logits, y, _pad_envs(envs), num_envs + 2)]
    return [*out, ("padding examples", *_pad_examples(logits, y, weights), num_envs)]


def _all_padding(logits, y, envs, num_envs):
    """All padding at once: (one-hot) weights with two zero columns and zero rows appended (numpy)."""
    weights = _one_hot(envs, num_envs, logits.dtype) if envs.ndim == 1 else envs
    f_pad, y_pad, w_pad = _pad_examples(logits, y, _pad_envs(weights))
    return f_pad, y_pad, w_pad, num_envs + 2


def _pipeline_any_kind(penalty_fn, loss_fn, num_envs, logits, y, envs, empirical):
    """`_pipeline` with the measure kind as a traced flag, so that both kinds share one compiled program."""
    grads = scale_grads(loss_fn, logits, y, envs, num_envs)
    uniform = env_measure(envs, num_envs, "uniform")
    measure = jnp.where(empirical, env_measure(envs, num_envs, "empirical"), uniform)
    return penalty_fn(grads, measure)


# Module-level jit so that repeated checks with the same functions and shapes reuse one compilation.
_STATIC = (0, 1, 2)
_pipeline_jit = jax.jit(_pipeline_any_kind, static_argnums=_STATIC)
_pipeline_value_and_grad_jit = jax.jit(
    jax.value_and_grad(_pipeline_any_kind, argnums=3), static_argnums=_STATIC
)


def check_env_pipeline(
    penalty_fn: Callable[[jax.Array, jax.Array], jax.Array],
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    logits: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
    *,
    kind: str = "uniform",
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Checks the whole path p = penalty_fn(scale_grads(loss_fn, f, y, envs), env_measure(envs, kind)).

    The properties, in order (names as in the error message):

    * 'finite scalar': p is a finite scalar.
    * 'jit equals eager': the jitted pipeline gives the same p.
    * 'relabel environments (reversal|roll)': labels mapped through a permutation π (or weight columns
      permuted) give the same p.
    * 'permute examples (reversal|roll)': permuting the rows of logits, y and envs together gives the same p.
    * 'labels equal one-hot weights': for labels, the one-hot weights `jaxirm.envs.one_hot` give the same p.
    * 'padding environments': ``num_envs + 2`` with labels, or two zero weight columns appended, give the same
      p (the padding environments get μ_e = 0 from `jaxirm.env_measure`).
    * 'padding examples': appending rows of zero weight with arbitrary logits and targets (to the weights,
      or to the one-hot weights of labels) gives the same p.
    * 'finite gradient': `jax.grad` of p w.r.t. the logits is finite.

    The three padding properties are first checked together in one compiled program ('padding (environments
    and examples together)'), and one by one only when that fails, to name the one that does.

    Functions are static arguments of a module-level `jax.jit` (the measure kind is not: both kinds share a
    compilation), so reuse the same ``penalty_fn`` and ``loss_fn`` objects across calls (not a fresh lambda
    each time) to compile once per shape.

    Args:
      penalty_fn: penalty ``(grads [E], measure [E]) -> scalar``, e.g. `jaxirm.tv_l1`; must be hashable.
      loss_fn: per-example loss ``(logits, y) -> [n]``, e.g. `jaxirm.losses.bce_with_logits`.
      logits: ``[n]`` or ``[n, C]`` model outputs.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels (with ``num_envs``) or ``[n, E]`` non-negative weights.
      num_envs: static number of environments; required with labels.
      kind: the `jaxirm.env_measure` kind, ``"uniform"`` or ``"empirical"``.
      rtol: relative tolerance of the comparisons.
      atol: absolute tolerance of the comparisons.

    Raises:
      AssertionError: a property fails; the message names it.
      ValueError, TypeError: invalid inputs, as in `jaxirm.scale_grads` and `jaxirm.env_measure`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.losses import bce_with_logits
      >>> from jaxirm.testing import check_env_pipeline
      >>> logits = jnp.array([1.0, -1.0, 2.0, 0.5])
      >>> y = jnp.array([1.0, 0.0, 0.0, 1.0])
      >>> check_env_pipeline(jaxirm.tv_l1, bce_with_logits, logits, y, jnp.array([0, 0, 1, 1]), 2)
    """
    name = "check_env_pipeline"
    if kind not in MEASURE_KINDS:
        raise ValueError(f"kind must be one of {MEASURE_KINDS}, got {kind!r}")
    f = _v.check_logits(loss_fn, logits)
    y = _v.check_targets(loss_fn, f, y)
    envs, num = _v.check_envs(envs, f.shape[0], num_envs)
    try:
        hash((penalty_fn, loss_fn))
    except TypeError as err:
        raise TypeError("penalty_fn and loss_fn must be hashable (they are static arguments of jit)") from err
    empirical = np.asarray(kind == "empirical")

    eager = _call(name, "finite scalar", _pipeline, penalty_fn, loss_fn, kind, num, f, y, envs)
    value = _scalar(name, "finite scalar", eager)
    f_np, y_np, envs_np = np.asarray(f), np.asarray(y), np.asarray(envs)

    def check(prop, with_grad, f_, y_, envs_, num_):
        fn = _pipeline_value_and_grad_jit if with_grad else _pipeline_jit
        out = _call(name, prop, fn, penalty_fn, loss_fn, num_, _dev(f_), _dev(y_), _dev(envs_), empirical)
        out, dlogits = out if with_grad else (out, None)
        _assert_close(name, prop, _scalar(name, prop, out), value, rtol, atol)
        return dlogits

    # The base input and the variants of the same shapes share one compiled program (with the gradient).
    dlogits = check("jit equals eager", True, f_np, y_np, envs_np, num)
    for prop, f_, y_, envs_ in _same_shape_variants(f_np, y_np, envs_np, num):
        check(prop, True, f_, y_, envs_, num)

    # Fast path: every kind of padding at once (one compilation); one by one only to name a failure.
    try:
        check("padding (environments and examples together)", False, *_all_padding(f_np, y_np, envs_np, num))
    except AssertionError:
        for prop, *args in _padding_variants(f_np, y_np, envs_np, num):
            check(prop, False, *args)
        raise

    prop = "finite gradient"
    df = np.asarray(dlogits)
    if df.shape != f.shape:
        _fail(name, prop, f"gradient w.r.t. logits has shape {df.shape}, expected {f.shape}")
    if not np.all(np.isfinite(df)):
        _fail(name, prop, "gradient w.r.t. logits is not finite")
