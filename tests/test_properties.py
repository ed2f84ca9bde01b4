"""Hypothesis properties of jaxirm's penalties and environment pipeline, with the `jaxirm.testing` toolkit.

Shapes come from the strategies' buckets, so jit compiles a few programs per bucket. The pipeline properties
compile per drawn shape and run a quarter of the profile's examples (6 in the "ci" profile); each example
checks all (penalty, measure kind) pairs, so that they share the compilations of its shapes.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _penalty_cases import PENALTY_CHECKS, PENALTY_IDS
from _tolerance import f32_tol
from hypothesis import given, note, settings
from hypothesis import strategies as st

import jaxirm
from jaxirm import testing
from jaxirm.envs import MEASURE_KINDS
from jaxirm.losses import squared_error

_PIPELINE_EXAMPLES = max(5, settings().max_examples // 4)


@st.composite
def grads_and_measures(draw):
    """Gradients g [E] and a measure μ [E] or None, E from the buckets."""
    num_envs = draw(testing.env_counts())
    grads = draw(testing.env_grads(num_envs))
    measure = draw(st.one_of(st.none(), testing.measures(num_envs)))
    return grads, measure


@pytest.mark.parametrize(
    "penalty, kwargs",
    PENALTY_CHECKS,
    ids=PENALTY_IDS,
)
@settings(deadline=None)
@given(grads_and_measures())
def test_check_penalty(penalty, kwargs, point):
    testing.check_penalty(penalty, *point, **kwargs)


@settings(deadline=None)
@given(grads_and_measures())
def test_tv_l1_le_tv_l2(point):
    grads, measure = point
    l1, l2 = float(jaxirm.tv_l1(grads, measure)), float(jaxirm.tv_l2(grads, measure))
    assert 0.0 <= l1 <= l2 * (1 + 1e-5) + 1e-7


@pytest.mark.parametrize(
    "split_fn, full_fn",
    [(jaxirm.tv_l2_split, jaxirm.tv_l2), (jaxirm.tv_l1_split, jaxirm.tv_l1)],
    ids=["tv_l2_split", "tv_l1_split"],
)
@settings(deadline=None)
@given(grads_and_measures())
def test_check_split_penalty(split_fn, full_fn, point):
    testing.check_split_penalty(split_fn, full_fn, *point)


@settings(deadline=None, max_examples=_PIPELINE_EXAMPLES)
@given(testing.problems())
def test_check_env_pipeline(problem):
    # All four (penalty, measure kind) pairs on each drawn problem: they share the eager compilations.
    for penalty in (jaxirm.tv_l2, jaxirm.tv_l1):
        for kind in MEASURE_KINDS:
            note(f"penalty={penalty.__name__}, kind={kind}")
            testing.check_env_pipeline(
                penalty, problem.loss_fn, problem.logits, problem.y, problem.envs, problem.num_envs, kind=kind
            )


@functools.partial(jax.jit, static_argnames=("loss_fn", "num_envs"))
def _penalties(loss_fn, logits, y, envs, num_envs):
    """Every penalty of the pipeline under both env_measure kinds, in one program per shape."""
    grads = jaxirm.scale_grads(loss_fn, logits, y, envs, num_envs)
    split = jaxirm.split_scale_grads(loss_fn, logits, y, envs, num_envs)
    risks = jaxirm.env_risks(loss_fn, logits, y, envs, num_envs)
    out = {}
    for kind in MEASURE_KINDS:
        mu = jaxirm.env_measure(envs, num_envs, kind)
        out[kind] = {
            "tv_l2": jaxirm.tv_l2(grads, mu),
            "tv_l1": jaxirm.tv_l1(grads, mu),
            "tv_l2_split": jaxirm.tv_l2_split(split, mu),
            "tv_l1_split": jaxirm.tv_l1_split(split, mu),
            "vrex": jaxirm.vrex(risks, mu),
        }
    return grads, out


@settings(deadline=None, max_examples=_PIPELINE_EXAMPLES)
@given(testing.problems())
def test_env_measure_penalties(problem):
    """Jensen under env_measure, and every penalty vanishes when every environment is at its optimum.

    Both halves run the same compiled program (same shapes). At zero logits d_i = ℓ'(0)·0 = 0 for every
    loss, so g = 0 in every environment (the dummy scale is stationary everywhere); for regression, logits = y
    fits every environment exactly.
    """
    args = (problem.loss_fn, problem.logits, problem.y, problem.envs, problem.num_envs)
    grads, out = _penalties(*args)
    num = int(np.shape(grads)[0])
    for kind in MEASURE_KINDS:
        l1, l2 = float(out[kind]["tv_l1"]), float(out[kind]["tv_l2"])
        # Jensen holds exactly for the same g and μ; each float32 penalty is an E-term sum and 2 more
        # roundings (≤ (E + 2)·eps32 relative), plus E subnormals that the CPU may flush to zero
        bound = l2 * (1 + f32_tol(num + 2)) + num * float(np.finfo(np.float32).tiny)
        assert 0.0 <= l1 <= bound, (kind, l1, l2)

    optimum = problem.y.copy() if problem.loss_fn is squared_error else np.zeros_like(problem.logits)
    grads, out = _penalties(problem.loss_fn, optimum, *args[2:])
    risks = np.asarray(jaxirm.env_risks(problem.loss_fn, optimum, *args[2:]))
    # equal risks R in exact arithmetic; in float32 each is a mean of ≤ n equal losses, so they and their
    # μ-mean differ by ≤ (2n + E)·eps32·R, and the variance by the square of that
    vrex_tol = f32_tol(2 * len(problem.y) + num, np.abs(risks).max()) ** 2
    np.testing.assert_array_equal(np.asarray(grads), 0.0)
    for kind in MEASURE_KINDS:
        for name in ("tv_l2", "tv_l1", "tv_l2_split", "tv_l1_split"):
            assert float(out[kind][name]) == 0.0, (kind, name)
        # Every environment has the same risk (log 2, log C, or 0), so their variance vanishes too.
        assert abs(float(out[kind]["vrex"])) <= vrex_tol, kind


@settings(deadline=None)
@given(st.data(), testing.env_counts())
def test_penalties_are_zero_at_zero_and_nonnegative(data, num_envs):
    grads = data.draw(testing.env_grads(num_envs))
    measure = data.draw(testing.measures(num_envs))
    zeros = jnp.zeros_like(jnp.asarray(grads))
    for penalty in (jaxirm.tv_l2, jaxirm.tv_l1, jaxirm.vrex):
        assert float(penalty(zeros, measure)) == 0.0
        assert float(penalty(grads, measure)) >= 0.0
    assert float(jaxirm.tv_l1_split(jnp.stack([grads, -grads]), measure)) >= 0.0
