"""The hypothesis strategies of `jaxirm.testing`: environment assignments, logits, targets, measures, grads.

Shapes come from a few buckets (`SIZE_BUCKETS`, `ENV_BUCKETS`, `CLASS_BUCKETS`) because `jax.jit` compiles
once per new shape. Import them from `jaxirm.testing`, which checks first that hypothesis is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxirm import _validation as _v
from jaxirm import losses as _losses

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
    return _v.check_int(name, value, 1, what="a Python int")


def _float32_bound(name: str, value: Any) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(np.float32(value))


def _from_buckets(buckets: tuple[int, ...]) -> st.SearchStrategy[int]:
    """One of ``buckets`` (a shape size), shrinking towards the first: the one strategy behind the buckets."""
    return st.sampled_from(buckets)


def sizes() -> st.SearchStrategy[int]:
    """Numbers of examples n, drawn from `SIZE_BUCKETS`.

    Returns:
      A strategy of Python ints.

    Examples:
      >>> from hypothesis import given, strategies as st
      >>> from jaxirm.testing import SIZE_BUCKETS, env_labels, sizes
      >>> @given(st.data(), sizes())
      ... def test_labels(data, n):
      ...     labels = data.draw(env_labels(n, 3))
      ...     assert n in SIZE_BUCKETS and labels.shape == (n,)
      >>> test_labels()
    """
    return _from_buckets(SIZE_BUCKETS)


def env_counts() -> st.SearchStrategy[int]:
    """Numbers of environments E, drawn from `ENV_BUCKETS`.

    Returns:
      A strategy of Python ints; draw E first, then the arrays of that many environments (`flatmap`).

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import ENV_BUCKETS, env_counts, measures
      >>> @given(env_counts().flatmap(measures))
      ... def test_mu(mu):
      ...     assert mu.shape[0] in ENV_BUCKETS
      >>> test_mu()
    """
    return _from_buckets(ENV_BUCKETS)


def class_counts() -> st.SearchStrategy[int]:
    """Numbers of classes C for multi-class problems, drawn from `CLASS_BUCKETS`.

    Returns:
      A strategy of Python ints, the ``num_classes`` of `logits` and `targets`.

    Examples:
      >>> from hypothesis import given
      >>> from jaxirm.testing import CLASS_BUCKETS, class_counts, logits
      >>> @given(class_counts().flatmap(lambda c: logits(8, c)))
      ... def test_f(f):
      ...     assert f.shape[0] == 8 and f.shape[1] in CLASS_BUCKETS
      >>> test_f()
    """
    return _from_buckets(CLASS_BUCKETS)


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
