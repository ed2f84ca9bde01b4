"""Tests of `jaxirm.testing`: the strategies draw what they promise; the checkers pass and fail rightly.

Every checker is run on jaxirm's own penalties (it must pass) and on a deliberately broken penalty for each of
its properties (it must fail, naming that property), so the checkers can fail.
"""

import importlib.util
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _penalty_cases import PENALTY_CHECKS, PENALTY_IDS
from _tolerance import f32_tol
from hypothesis import find, given, settings
from hypothesis import strategies as st

import jaxirm
from jaxirm import testing
from jaxirm.losses import bce_with_logits, softmax_cross_entropy, squared_error
from jaxirm.penalties import abs0

# `find` searches for an example; it must not depend on the CI profile's small max_examples.
_FIND = settings(max_examples=500, database=None)

# ----------------------------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------------------------


@given(testing.sizes(), testing.env_counts(), testing.class_counts())
def test_buckets(n, num_envs, num_classes):
    assert n in testing.SIZE_BUCKETS
    assert num_envs in testing.ENV_BUCKETS
    assert num_classes in testing.CLASS_BUCKETS


@given(st.data(), testing.sizes(), testing.env_counts(), st.booleans())
def test_env_labels(data, n, num_envs, all_present):
    labels = data.draw(testing.env_labels(n, num_envs, all_present=all_present))
    assert labels.shape == (n,) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < num_envs
    if all_present:
        assert set(labels.tolist()) == set(range(num_envs))


@given(testing.env_labels(3, 5, all_present=True))
def test_env_labels_all_present_with_fewer_examples_than_envs(labels):
    assert labels.shape == (3,) and labels.min() >= 0 and labels.max() < 5


def test_env_labels_can_leave_envs_without_examples():
    labels = find(testing.env_labels(32, 3), lambda a: len(set(a.tolist())) < 3, settings=_FIND)
    assert len(set(labels.tolist())) < 3


@given(st.data(), testing.sizes(), testing.env_counts(), st.booleans())
def test_env_weights(data, n, num_envs, padding):
    w = data.draw(testing.env_weights(n, num_envs, padding=padding))
    assert w.shape == (n, num_envs) and w.dtype == np.float32
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    assert np.any(w.sum(axis=0) > 0), "at least one environment keeps mass"
    if not padding:
        assert np.all(w.sum(axis=0) > 0) and np.all(w.sum(axis=1) > 0)


def test_env_weights_padding_appears():
    w = find(testing.env_weights(8, 3), lambda a: (a.sum(axis=0) == 0).any(), settings=_FIND)
    assert (w.sum(axis=0) == 0).any() and (w.sum(axis=0) > 0).any()
    w = find(testing.env_weights(8, 3), lambda a: (a.sum(axis=1) == 0).any(), settings=_FIND)
    assert (w.sum(axis=1) == 0).any()
    # Soft (fractional) weights appear too, not only 0/1.
    find(testing.env_weights(8, 3), lambda a: ((a > 0) & (a < 1)).any(), settings=_FIND)


def test_env_assignments_draws_both_representations():
    strategy = testing.env_assignments(8, 3)
    assert find(strategy, lambda a: a.ndim == 1, settings=_FIND).dtype == np.int32
    assert find(strategy, lambda a: a.ndim == 2, settings=_FIND).dtype == np.float32


@given(testing.env_assignments(8, 3, padding=False))
def test_env_assignments_without_padding(envs):
    mass = np.asarray(jaxirm.env_mass(envs, 3))
    assert np.all(mass > 0)


@given(st.data(), testing.sizes(), st.one_of(st.none(), testing.class_counts()))
def test_logits(data, n, num_classes):
    f = data.draw(testing.logits(n, num_classes, max_abs=2.5))
    assert f.dtype == np.float32
    assert f.shape == ((n,) if num_classes is None else (n, num_classes))
    assert np.all(np.isfinite(f)) and np.abs(f).max() <= 2.5


@given(st.data(), testing.sizes(), st.sampled_from(testing.LOSS_KINDS), testing.class_counts())
def test_targets(data, n, kind, num_classes):
    y = data.draw(testing.targets(n, kind, num_classes))
    assert y.shape == (n,)
    if kind == "binary":
        assert y.dtype == np.float32 and set(np.unique(y).tolist()) <= {0.0, 1.0}
    elif kind == "regression":
        assert y.dtype == np.float32 and np.all(np.isfinite(y)) and np.abs(y).max() <= 5.0
    else:
        assert y.dtype == np.int32 and y.min() >= 0 and y.max() < num_classes


def test_targets_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        testing.targets(8, "multiclass")
    with pytest.raises(ValueError, match="kind"):
        testing.targets(8, "ordinal")


@given(st.data(), testing.env_counts(), st.booleans())
def test_measures(data, num_envs, allow_zero):
    mu = data.draw(testing.measures(num_envs, allow_zero=allow_zero))
    assert mu.shape == (num_envs,) and mu.dtype == np.float32
    # float32 w / Σw, then an E-term float32 sum: ≤ (2E + 2)·eps32 from 1
    assert np.all(mu >= 0) and abs(float(mu.sum()) - 1.0) <= f32_tol(2 * num_envs + 2)
    if not allow_zero:
        assert np.all(mu > 0)


def test_measures_zero_entries_appear():
    mu = find(testing.measures(4), lambda m: (m == 0).any(), settings=_FIND)
    assert (mu == 0).any() and abs(float(mu.sum()) - 1.0) <= f32_tol(2 * 4 + 2)  # as in test_measures


@given(st.data(), testing.env_counts())
def test_env_grads(data, num_envs):
    g = data.draw(testing.env_grads(num_envs, max_abs=0.5))
    assert g.shape == (num_envs,) and g.dtype == np.float32
    assert np.all(np.isfinite(g)) and np.abs(g).max() <= 0.5


def test_env_grads_mix_zeros_and_nonzeros():
    g = find(testing.env_grads(4), lambda a: (a == 0).any() and (a != 0).any(), settings=_FIND)
    assert (g == 0).any() and (g != 0).any()


_KIND_LOSS = {"binary": bce_with_logits, "regression": squared_error, "multiclass": softmax_cross_entropy}


@given(st.data(), st.sampled_from((None, *testing.LOSS_KINDS)))
def test_problems(data, kind):
    p = data.draw(testing.problems(kind))
    assert isinstance(p, testing.Problem)
    n = p.logits.shape[0]
    assert n in testing.SIZE_BUCKETS and p.num_envs in testing.ENV_BUCKETS
    assert p.y.shape == (n,) and p.envs.shape[0] == n
    if kind is not None:
        assert p.loss_fn is _KIND_LOSS[kind]
    if p.loss_fn is softmax_cross_entropy:
        assert p.logits.ndim == 2 and p.logits.shape[1] in testing.CLASS_BUCKETS
        assert p.y.dtype == np.int32 and p.y.max() < p.logits.shape[1]
    else:
        assert p.logits.ndim == 1 and p.y.dtype == np.float32
    if p.envs.ndim == 1:
        assert p.envs.max() < p.num_envs
    else:
        assert p.envs.shape == (n, p.num_envs)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: testing.env_labels(0, 3), ValueError),
        (lambda: testing.env_labels(8, 2.5), TypeError),
        (lambda: testing.env_weights(8, 0), ValueError),
        (lambda: testing.measures(True), TypeError),
        (lambda: testing.logits(8, max_abs=-1.0), ValueError),
        (lambda: testing.problems("ordinal"), ValueError),
    ],
)
def test_strategies_reject_bad_arguments(make, error):
    with pytest.raises(error):
        make()


def test_import_without_hypothesis_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    spec = importlib.util.spec_from_file_location("_jaxirm_testing_no_hypothesis", testing.__file__)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[test\]"'):
        spec.loader.exec_module(module)


# ----------------------------------------------------------------------------------------------------------
# Checkers pass on jaxirm's penalties
# ----------------------------------------------------------------------------------------------------------

_POINTS = [
    ("mixed", [0.5, 0.0, -1.0], None),
    ("mixed_measure", [0.5, 0.0, -1.0], [0.2, 0.8, 0.0]),
    ("all_zero", [0.0, 0.0, 0.0], [0.5, 0.25, 0.25]),
    ("one_env", [0.3], None),
    ("one_env_zero", [0.0], [1.0]),
]
_POINT_IDS = [p[0] for p in _POINTS]


def _point(values, measure):
    return jnp.asarray(values, jnp.float32), None if measure is None else jnp.asarray(measure, jnp.float32)


@pytest.mark.parametrize("_, values, measure", _POINTS, ids=_POINT_IDS)
@pytest.mark.parametrize(
    "penalty, kwargs",
    PENALTY_CHECKS,
    ids=PENALTY_IDS,
)
def test_check_penalty_passes(penalty, kwargs, _, values, measure):
    testing.check_penalty(penalty, *_point(values, measure), **kwargs)


@pytest.mark.parametrize("_, values, measure", _POINTS, ids=_POINT_IDS)
@pytest.mark.parametrize(
    "split_fn, full_fn",
    [(jaxirm.tv_l2_split, jaxirm.tv_l2), (jaxirm.tv_l1_split, jaxirm.tv_l1)],
    ids=["tv_l2_split", "tv_l1_split"],
)
def test_check_split_penalty_passes(split_fn, full_fn, _, values, measure):
    testing.check_split_penalty(split_fn, full_fn, *_point(values, measure))


_F8 = jnp.array([1.0, -1.0, 2.0, 0.5, -0.3, 0.0, 1.5, -2.0], jnp.float32)
_Y8 = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], jnp.float32)
_LABELS8 = jnp.array([0, 0, 2, 2, 0, 2, 0, 2], jnp.int32)  # environment 1 is empty: a padding environment
_WEIGHTS8 = jnp.array(
    [[1, 0, 0.5], [0, 1, 0.5], [0.2, 0.8, 0], [0, 0, 0]]  # row 3 is a padding example
    + [[1, 0, 0], [0.3, 0.3, 0.4], [0, 1, 0], [0.5, 0, 0.5]],
    jnp.float32,
)


@pytest.mark.parametrize(
    "envs, penalty, kind",
    [
        pytest.param(_LABELS8, jaxirm.tv_l2, "uniform", id="labels-tv_l2-uniform"),
        pytest.param(_LABELS8, jaxirm.tv_l1, "empirical", id="labels-tv_l1-empirical"),
        pytest.param(_WEIGHTS8, jaxirm.tv_l2, "empirical", id="weights-tv_l2-empirical"),
        pytest.param(_WEIGHTS8, jaxirm.tv_l1, "uniform", id="weights-tv_l1-uniform"),
    ],
)
def test_check_env_pipeline_passes(envs, penalty, kind):
    testing.check_env_pipeline(penalty, bce_with_logits, _F8, _Y8, envs, 3, kind=kind)


def test_checkers_reject_bad_inputs():
    with pytest.raises(ValueError, match="grads"):
        testing.check_penalty(jaxirm.tv_l2, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="measure"):
        testing.check_penalty(jaxirm.tv_l2, jnp.ones(3), jnp.ones(2) / 2)
    with pytest.raises(ValueError, match="non-negative"):
        testing.check_split_penalty(jaxirm.tv_l2_split, jaxirm.tv_l2, jnp.ones(2), jnp.array([1.5, -0.5]))
    with pytest.raises(ValueError, match="kind"):
        testing.check_env_pipeline(jaxirm.tv_l2, bce_with_logits, _F8, _Y8, _LABELS8, 3, kind="median")
    with pytest.raises(ValueError, match="num_envs"):
        testing.check_env_pipeline(jaxirm.tv_l2, bce_with_logits, _F8, _Y8, _LABELS8)


# ----------------------------------------------------------------------------------------------------------
# Checkers fail on broken penalties, naming the property
# ----------------------------------------------------------------------------------------------------------


def _mu(g, measure):
    return jnp.full(g.shape, 1.0 / g.shape[0], g.dtype) if measure is None else measure


def _np_tv_l2(g, measure):
    return np.asarray(np.sum(np.asarray(measure) * np.asarray(g) ** 2), np.float32)


def vector_valued(g, measure):
    return _mu(g, measure) * g**2


def nan_valued(g, measure):
    return jaxirm.tv_l2(g, measure) * jnp.nan


def negative(g, measure):
    return -jaxirm.tv_l2(g, measure)


def offset(g, measure):
    return jaxirm.tv_l2(g, measure) + 0.1


def by_position(g, measure):
    """Weights environments by their index: not invariant under relabelling."""
    return jnp.sum(_mu(g, measure) * jnp.arange(1, g.shape[0] + 1) * g**2)


def none_is_sum(g, measure):
    """Treats measure=None as a sum, not the uniform mean."""
    return jnp.sum(g**2) if measure is None else jaxirm.tv_l2(g, measure)


def per_len(g, measure):
    """Divides by len(g): sensitive to padding environments."""
    return jnp.sum(_mu(g, measure) * g**2) / g.shape[0]


def ignores_measure(g, measure):
    """Uniform over all entries, padding environments included."""
    return jnp.mean(g**2)


def twice_tv_l1(g, measure):
    return 2.0 * jaxirm.tv_l1(g, measure)


def numpy_penalty(g, measure):
    """Plain numpy: cannot be traced by jit."""
    return _np_tv_l2(g, np.asarray(_mu(g, measure)))


def callback_penalty(g, measure):
    """numpy through pure_callback with a vmap rule that reduces over the batch axis too."""
    shape = jax.ShapeDtypeStruct((), g.dtype)
    return jax.pure_callback(_np_tv_l2, shape, g, _mu(g, measure), vmap_method="expand_dims")


def norm(g, measure):
    """sqrt(tv_l2): its gradient at g = 0 is NaN."""
    return jnp.sqrt(jaxirm.tv_l2(g, measure))


def tv_l1_jnp_abs(g, measure):
    """tv_l1 with jnp.abs, whose gradient at 0 is 1 in JAX."""
    return jnp.sum(_mu(g, measure) * jnp.abs(g)) ** 2


_G = jnp.array([0.5, 0.0, -1.0], jnp.float32)
_MU = jnp.array([0.5, 0.3, 0.2], jnp.float32)


@pytest.mark.parametrize(
    "penalty, measure, kwargs, prop",
    [
        (vector_valued, None, {}, "finite scalar"),
        (nan_valued, None, {}, "finite scalar"),
        (negative, None, {}, "non-negative"),
        (offset, _MU, {}, "zero at zero"),
        (by_position, _MU, {}, "permutation invariance"),
        (none_is_sum, None, {}, "measure=None is uniform"),
        (per_len, None, {}, "padding environments"),
        (ignores_measure, _MU, {}, "padding environments"),
        (twice_tv_l1, _MU, {"dominated_by": jaxirm.tv_l2}, "dominated_by"),
        (numpy_penalty, None, {}, "jit equals eager"),
        (callback_penalty, _MU, {}, "vmap equals loop"),
        (norm, None, {}, "finite gradient"),
        (tv_l1_jnp_abs, None, {}, "zero subgradient"),
        (jaxirm.vrex, _MU, {}, "zero subgradient"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_check_penalty_fails(penalty, measure, kwargs, prop):
    with pytest.raises(AssertionError, match=f"check_penalty: property '{prop}"):
        testing.check_penalty(penalty, _G, measure, **kwargs)


def test_check_penalty_uses_the_tolerances():
    def tiny_offset(g, measure):
        return jaxirm.tv_l2(g, measure) + 1e-7

    testing.check_penalty(tiny_offset, _G)  # within the default atol = 1e-6
    with pytest.raises(AssertionError, match="zero at zero"):
        testing.check_penalty(tiny_offset, _G, atol=1e-8)


def split_mismatch(split, measure):
    """The tv_l2 estimator, checked against the tv_l1 penalty."""
    return jaxirm.tv_l2_split(split, measure)


def half_a_only(split, measure):
    return jnp.sum(_mu(split[0], measure) * split[0] * split[0])


def split_offset(split, measure):
    return jaxirm.tv_l2_split(split, measure) + 0.1


def split_by_position(split, measure):
    return jnp.sum(_mu(split[0], measure) * jnp.arange(1, split.shape[1] + 1) * split[0] * split[1])


def split_per_len(split, measure):
    return jaxirm.tv_l2_split(split, measure) / split.shape[1]


def split_numpy(split, measure):
    mu = np.asarray(_mu(split[0], measure))
    return np.asarray(np.sum(mu * np.asarray(split[0]) * np.asarray(split[1])), np.float32)


def split_unguarded_sqrt(split, measure):
    """tv_l1_split without the guard at 0: the gradient of sqrt at 0 is infinite."""
    return jnp.sum(_mu(split[0], measure) * jnp.sqrt(abs0(split[0] * split[1]))) ** 2


@pytest.mark.parametrize(
    "split_fn, full_fn, prop",
    [
        (vector_valued, jaxirm.tv_l2, "finite scalar"),
        (split_mismatch, jaxirm.tv_l1, "equal halves"),
        (split_offset, offset, "zero at zero"),
        (half_a_only, jaxirm.tv_l2, "swap halves"),
        (split_by_position, by_position, "permutation invariance"),
        (split_per_len, per_len, "padding environments"),
        (split_numpy, jaxirm.tv_l2, "jit equals eager"),
        (split_unguarded_sqrt, jaxirm.tv_l1, "finite gradient"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_check_split_penalty_fails(split_fn, full_fn, prop):
    with pytest.raises(AssertionError, match=f"check_split_penalty: property '{prop}"):
        testing.check_split_penalty(split_fn, full_fn, _G, None if split_fn is vector_valued else _MU)


def centred_bce(logits, y):
    """Not a per-example loss: it uses the batch mean of the logits."""
    return bce_with_logits(logits - jnp.mean(logits), y)


def position_weighted_bce(logits, y):
    """Not a per-example loss: example i is weighted by its position."""
    return bce_with_logits(logits, y) * jnp.arange(1, logits.shape[0] + 1, dtype=logits.dtype)


_ALL_LABELS8 = jnp.array([0, 1, 2, 2, 0, 1, 0, 2], jnp.int32)


@pytest.mark.parametrize(
    "penalty, loss, logits, envs, prop",
    [
        (vector_valued, bce_with_logits, _F8, _LABELS8, "finite scalar"),
        (numpy_penalty, bce_with_logits, _F8, _LABELS8, "jit equals eager"),
        (by_position, bce_with_logits, _F8, _ALL_LABELS8, "relabel environments"),
        (ignores_measure, bce_with_logits, _F8, _ALL_LABELS8, "padding environments"),
        (ignores_measure, bce_with_logits, _F8, _WEIGHTS8, "padding environments"),
        (jaxirm.tv_l2, centred_bce, _F8, _WEIGHTS8, "padding examples"),
        (jaxirm.tv_l2, position_weighted_bce, _F8, _WEIGHTS8, "permute examples"),
        (norm, bce_with_logits, jnp.zeros(8), _LABELS8, "finite gradient"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_check_env_pipeline_fails(penalty, loss, logits, envs, prop):
    with pytest.raises(AssertionError, match=f"check_env_pipeline: property '{prop}"):
        testing.check_env_pipeline(penalty, loss, logits, _Y8, envs, 3)
