"""Bad inputs raise a ValueError/TypeError that names the argument, before tracing.

Every case runs twice: eagerly, and inside `jax.jit` with the bad input closed over (so it is concrete) and
the other arrays traced. Both must raise exactly the same exception type (not a JAX tracer or XLA error, e.g.
``ConcretizationTypeError`` is a subclass of TypeError, so the type is compared exactly) with the same
message.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import f32_tol

import jaxirm
from jaxirm import losses
from jaxirm.losses import bce_with_logits, softmax_cross_entropy, squared_error

F = jnp.array([0.5, -1.0, 2.0, 0.0])  # binary logits [n = 4]
Y = jnp.array([1.0, 0.0, 1.0, 0.0])
F2 = jnp.zeros((4, 3))  # multiclass logits [n, C = 3]
YC = jnp.array([0, 2, 1, 2])
LAB = jnp.array([0, 1, 0, 1])
W = jnp.full((4, 2), 0.5)
G = jnp.array([0.1, -0.2])
# Bad values are built here, outside any trace: an array built inside a jitted function (jnp.array of a
# list, .at[].set) is a tracer there, and value checks only look at concrete arrays.
LAB_TOO_BIG = jnp.array([0, 1, 2, 1])
LAB_NEGATIVE = jnp.array([0, -1, 0, 1])
W_NEGATIVE = W.at[2, 1].set(-0.1)
W_NAN = W.at[0, 0].set(jnp.nan)
YC_TOO_BIG = jnp.array([0, 3, 1, 2])
MU_NEGATIVE = jnp.array([1.5, -0.5])
HALVES_TWO = jnp.array([0, 1, 2, 1])
ONE_HOT_TOO_BIG = jnp.array([0, 2])
# Two float32 computations of g = means of ≤ 4 derivatives (≤ 6 roundings each): ≤ 4·(2·4 + 7)·eps32·max|d|
G_TOL = f32_tol(2 * 4 + 7, float(jnp.abs(losses.scale_derivative(bce_with_logits, F, Y)).max()))


class Case(NamedTuple):
    id: str
    fn: object  # called as fn(*traced)
    traced: tuple  # arrays passed as arguments (traced under jit); everything else is closed over
    exc: type
    match: str


def _sg(loss_fn=bce_with_logits, logits=None, y=None, envs=None, num_envs=2, **kw):
    """scale_grads with defaults filled in, so that each case shows only what is wrong."""
    logits = F if logits is None else logits
    y = Y if y is None else y
    envs = LAB if envs is None else envs
    return jaxirm.scale_grads(loss_fn, logits, y, envs, num_envs=num_envs, **kw)


def _bad_loss_shape(f, y):
    return ((f - y) ** 2)[:, None]


def _bad_loss_mean(f, y):
    return jnp.mean((f - y) ** 2)


CASES = [
    # lengths of logits / y / envs
    Case(
        "y_length", lambda f: _sg(logits=f, y=Y[:3]), (F,), ValueError, r"y has 3 examples but logits has 4"
    ),
    Case(
        "labels_length",
        lambda f: _sg(logits=f, envs=jnp.array([0, 1, 0, 1, 1])),
        (F,),
        ValueError,
        r"envs has 5 examples but logits has 4",
    ),
    Case(
        "weights_length",
        lambda f: _sg(logits=f, envs=jnp.ones((3, 2)), num_envs=None),
        (F,),
        ValueError,
        r"envs has 3 examples",
    ),
    Case("y_rank", lambda f: _sg(logits=f, y=Y[:, None]), (F,), ValueError, r"y must have shape \[n\]"),
    Case(
        "empty_logits",
        lambda: _sg(logits=jnp.zeros(0), y=jnp.zeros(0), envs=LAB[:0]),
        (),
        ValueError,
        r"at least one",
    ),
    # environments
    Case(
        "labels_without_num_envs",
        lambda f: _sg(logits=f, num_envs=None),
        (F,),
        ValueError,
        r"num_envs is required",
    ),
    Case(
        "weights_3d",
        lambda w: _sg(envs=w, num_envs=None),
        (jnp.ones((4, 2, 1)),),
        ValueError,
        r"envs must be.*\(4, 2, 1\)",
    ),
    Case(
        "float_labels",
        lambda f: _sg(logits=f, envs=LAB.astype(jnp.float32)),
        (F,),
        TypeError,
        r"envs of shape \[n\]",
    ),
    Case(
        "labels_out_of_range",
        lambda f: _sg(logits=f, envs=LAB_TOO_BIG),
        (F,),
        ValueError,
        r"envs labels",
    ),
    Case(
        "negative_label",
        lambda f: _sg(logits=f, envs=LAB_NEGATIVE),
        (F,),
        ValueError,
        r"envs labels",
    ),
    Case(
        "negative_weights",
        lambda f: _sg(logits=f, envs=W_NEGATIVE, num_envs=None),
        (F,),
        ValueError,
        r"envs weights must be non-negative",
    ),
    Case(
        "nan_weights",
        lambda f: _sg(logits=f, envs=W_NAN, num_envs=None),
        (F,),
        ValueError,
        r"envs weights must be finite",
    ),
    # num_envs
    Case(
        "num_envs_float",
        lambda f: _sg(logits=f, num_envs=2.0),
        (F,),
        TypeError,
        r"num_envs must be a static Python int",
    ),
    Case(
        "num_envs_bool",
        lambda f: _sg(logits=f, num_envs=True),
        (F,),
        TypeError,
        r"num_envs must be a static Python int",
    ),
    Case("num_envs_zero", lambda f: _sg(logits=f, num_envs=0), (F,), ValueError, r"num_envs must be >= 1"),
    Case(
        "num_envs_negative", lambda f: _sg(logits=f, num_envs=-3), (F,), ValueError, r"num_envs must be >= 1"
    ),
    Case(
        "num_envs_mismatch",
        lambda w: _sg(envs=w, num_envs=3),
        (W,),
        ValueError,
        r"num_envs = 3 does not match",
    ),
    # logits against the loss kind
    Case(
        "bce_2d_logits",
        lambda f: _sg(logits=f),
        (F[:, None],),
        ValueError,
        r"logits must have shape \[n\].*squeeze",
    ),
    Case(
        "squared_2d_logits",
        lambda f: _sg(loss_fn=squared_error, logits=f),
        (F2,),
        ValueError,
        r"logits must have shape \[n\] for the regression loss",
    ),
    Case(
        "ce_1d_logits",
        lambda f: _sg(loss_fn=softmax_cross_entropy, logits=f, y=YC),
        (F,),
        ValueError,
        r"logits must have shape \[n, C\]",
    ),
    Case(
        "ce_float_labels",
        lambda f: _sg(loss_fn=softmax_cross_entropy, logits=f, y=YC.astype(jnp.float32)),
        (F2,),
        TypeError,
        r"y must hold integer class labels",
    ),
    Case(
        "ce_labels_out_of_range",
        lambda f: _sg(loss_fn=softmax_cross_entropy, logits=f, y=YC_TOO_BIG),
        (F2,),
        ValueError,
        r"y must hold class labels in \[0, 3\)",
    ),
    Case(
        "int_logits",
        lambda: _sg(logits=jnp.array([1, 0, 1, 0])),
        (),
        TypeError,
        r"logits must be floating point",
    ),
    Case("string_logits", lambda: _sg(logits="abcd"), (), TypeError, r"logits must be"),
    Case(
        "loss_not_callable",
        lambda f: _sg(loss_fn="bce", logits=f),
        (F,),
        TypeError,
        r"loss_fn must be callable",
    ),
    Case(
        "loss_wrong_shape",
        lambda f: _sg(loss_fn=_bad_loss_shape, logits=f),
        (F,),
        ValueError,
        r"loss_fn _bad_loss_shape must return per-example losses of shape \[n\] = \[4\], got shape \(4, 1\)",
    ),
    Case(
        "loss_returns_mean",
        lambda f: jaxirm.env_risks(_bad_loss_mean, f, Y, LAB, num_envs=2),
        (F,),
        ValueError,
        r"loss_fn _bad_loss_mean must return per-example losses",
    ),
    Case(
        "scale_shape",
        lambda f: jaxirm.env_risks(bce_with_logits, f, Y, LAB, num_envs=2, scale=jnp.ones(3)),
        (F,),
        ValueError,
        r"scale must be a scalar or have shape \[n\] = \[4\]",
    ),
    Case(
        "no_closed_form",
        lambda f: losses.scale_derivative(_bad_loss_mean, f, Y),
        (F,),
        ValueError,
        r"loss_fn _bad_loss_mean has no closed-form",
    ),
    # measures
    Case(
        "measure_kind",
        lambda: jaxirm.env_measure(LAB, 2, kind="population"),
        (),
        ValueError,
        r"kind must be one of",
    ),
    Case("measure_labels_no_num", lambda: jaxirm.env_measure(LAB), (), ValueError, r"num_envs is required"),
    Case(
        "tv_l1_measure_length",
        lambda g: jaxirm.tv_l1(g, jnp.full(3, 1 / 3)),
        (G,),
        ValueError,
        r"measure has length 3",
    ),
    Case(
        "tv_l2_measure_rank",
        lambda g: jaxirm.tv_l2(g, jnp.full((2, 1), 0.5)),
        (G,),
        ValueError,
        r"measure must have shape",
    ),
    Case(
        "vrex_measure_negative",
        lambda g: jaxirm.vrex(g, MU_NEGATIVE),
        (G,),
        ValueError,
        r"measure must be non-negative",
    ),
    # penalty inputs
    Case("tv_l1_grads_3d", lambda g: jaxirm.tv_l1(g), (G[None, None],), ValueError, r"grads must have shape"),
    Case("tv_l2_grads_0d", lambda g: jaxirm.tv_l2(g), (G[0],), ValueError, r"grads must have shape \[E\]"),
    Case(
        "vrex_risks_2d",
        lambda g: jaxirm.vrex(g),
        (jnp.ones((2, 2)),),
        ValueError,
        r"risks must have shape \[E\]",
    ),
    Case(
        "tv_l2_split_shape",
        lambda g: jaxirm.tv_l2_split(g),
        (G,),
        ValueError,
        r"split_grads must have shape \[2, E\]",
    ),
    Case(
        "tv_l1_split_shape",
        lambda g: jaxirm.tv_l1_split(g),
        (jnp.ones((3, 2)),),
        ValueError,
        r"split_grads must have shape",
    ),
    Case(
        "split_measure_length",
        lambda g: jaxirm.tv_l1_split(g, jnp.ones(3) / 3),
        (jnp.ones((2, 2)),),
        ValueError,
        r"measure has length",
    ),
    # halves
    Case(
        "halves_shape",
        lambda f: jaxirm.split_scale_grads(
            bce_with_logits, f, Y, LAB, num_envs=2, halves=jnp.array([0, 1, 0])
        ),
        (F,),
        ValueError,
        r"halves must have shape \[n\] = \[4\]",
    ),
    Case(
        "halves_float",
        lambda f: jaxirm.split_scale_grads(
            bce_with_logits, f, Y, LAB, num_envs=2, halves=jnp.array([0.0, 1, 0, 1])
        ),
        (F,),
        TypeError,
        r"halves must hold integers",
    ),
    Case(
        "halves_values",
        lambda f: jaxirm.split_scale_grads(bce_with_logits, f, Y, LAB, num_envs=2, halves=HALVES_TWO),
        (F,),
        ValueError,
        r"halves must hold only 0",
    ),
    # envs helpers
    Case(
        "one_hot_float",
        lambda: jaxirm.one_hot(jnp.array([0.0, 1.0]), 2),
        (),
        TypeError,
        r"envs of shape \[n\]",
    ),
    Case(
        "one_hot_range",
        lambda: jaxirm.one_hot(ONE_HOT_TOO_BIG, 2),
        (),
        ValueError,
        r"envs labels must lie in \[0, num_envs\) = \[0, 2\), got range \[0, 2\]",
    ),
    Case(
        "mass_weights_3d", lambda w: jaxirm.env_mass(w), (jnp.ones((2, 2, 2)),), ValueError, r"envs must be"
    ),
    Case("split_halves_no_num", lambda: jaxirm.split_halves(LAB), (), ValueError, r"num_envs is required"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_raises_eagerly(case):
    with pytest.raises(Exception) as info:
        case.fn(*case.traced)
    assert type(info.value) is case.exc, f"{type(info.value).__name__}: {info.value}"
    assert info.match(case.match)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_raises_before_tracing_under_jit(case):
    with pytest.raises(Exception) as info:
        jax.jit(case.fn)(*case.traced)
    assert type(info.value) is case.exc, f"{type(info.value).__name__}: {info.value}"
    assert info.match(case.match)


def test_traced_num_envs_is_a_type_error_naming_it():
    fn = jax.jit(jaxirm.scale_grads, static_argnums=0)  # num_envs is not static: it becomes a tracer
    with pytest.raises(Exception) as info:
        fn(bce_with_logits, F, Y, LAB, 2)
    assert type(info.value) is TypeError
    assert info.match(r"num_envs must be a static Python int.*static_argnames")
    # marked static it works
    g = jax.jit(jaxirm.scale_grads, static_argnums=(0, 4))(bce_with_logits, F, Y, LAB, 2)
    np.testing.assert_allclose(g, jaxirm.scale_grads(bce_with_logits, F, Y, LAB, 2), rtol=0, atol=G_TOL)


def test_value_checks_are_skipped_for_traced_arrays():
    """Label ranges and weight signs are checked only when concrete; traced values pass (documented)."""
    mass = jax.jit(lambda e: jaxirm.env_mass(e, 2))(jnp.array([0, 1, 5]))
    np.testing.assert_array_equal(mass, [1.0, 1.0])  # segment_sum drops the out-of-range label
    with pytest.raises(ValueError, match="envs labels"):
        jaxirm.env_mass(jnp.array([0, 1, 5]), 2)


@pytest.mark.parametrize("envs", [np.array([0, 1, 0, 1]), [0, 1, 0, 1]], ids=["numpy", "list"])
def test_numpy_and_list_inputs_are_accepted(envs):
    g = jaxirm.scale_grads(bce_with_logits, np.asarray(F), [1.0, 0.0, 1.0, 0.0], envs, num_envs=2)
    expected = jaxirm.scale_grads(bce_with_logits, F, Y, LAB, num_envs=2)
    np.testing.assert_allclose(g, expected, rtol=0, atol=G_TOL)


def test_solver_init_needs_scalar_hparams_but_vmaps_over_a_grid():
    """A list for one run is refused with a pointer to sweep (jax's "Gradient only defined for
    scalar-output functions" otherwise); vmapping init over a grid still works (each value is a scalar)."""
    from jaxirm.models import MLP
    from jaxirm.solvers import Batch, irm

    solver = irm(MLP(hidden=()), anneal_steps=0)
    batch = Batch(jnp.ones((4, 3)), Y, LAB)
    with pytest.raises(ValueError, match=r"hparams\['lam'\] must be a scalar, got shape \(2,\)"):
        solver.init(jax.random.key(0), batch, {"lam": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"hparams\['lam'\] must be a scalar"):  # also when traced
        jax.jit(solver.init)(jax.random.key(0), batch, {"lam": jnp.array([1.0, 2.0])})
    states = jax.vmap(solver.init, in_axes=(None, None, 0))(
        jax.random.key(0), batch, {"lam": jnp.array([1.0, 2.0])}
    )
    np.testing.assert_array_equal(states.hparams["lam"], [1.0, 2.0])


@pytest.mark.parametrize(
    "seed, exc, match",
    [
        (-1, ValueError, r"seed must be >= 0, got -1"),
        (2**32, ValueError, r"seed must be >= 0 and < 2\*\*32"),
        (1.5, TypeError, r"seed must be a non-negative int, got float"),
        ("0", TypeError, r"seed must be a non-negative int, got str"),
        (True, TypeError, r"seed must be a non-negative int, got bool"),
    ],
)
def test_check_seed(seed, exc, match):
    from jaxirm import _validation

    with pytest.raises(exc, match=match):
        _validation.check_seed(seed, upper=None if seed == -1 else _validation.UINT32_SEEDS)
    assert _validation.check_seed(np.int64(7), upper=2**32) == 7
