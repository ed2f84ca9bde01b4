"""`jaxirm._tree.when`: a branch that stays one under vmap — the values of `lax.cond` member by member, and
the branch's work done only when some member of the batch takes it (counted with a host callback)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxirm._tree import when


@pytest.fixture
def counted():
    calls = []

    def double(operands):
        x, k = operands
        spec = jax.ShapeDtypeStruct(x.shape, x.dtype)

        def host(v):
            calls.append(v.shape)
            return np.asarray(v * 2)

        return jax.pure_callback(host, spec, x, vmap_method="expand_dims") + k

    return double, calls


def keep(operands):
    return operands[0]


def test_unbatched_is_a_cond(counted):
    double, calls = counted
    x = jnp.arange(4.0)
    f = jax.jit(lambda p, x: when(p, double, keep, (x, 1.0)))
    np.testing.assert_array_equal(f(True, x), 2 * x + 1)
    np.testing.assert_array_equal(f(False, x), x)
    assert len(calls) == 1  # the False call did not run the branch


@pytest.mark.parametrize("preds, runs", [([True, False, True], 1), ([False, False, False], 0)])
def test_vmapped_selects_member_by_member_and_skips_when_no_member_takes_it(counted, preds, runs):
    double, calls = counted
    xs = jnp.arange(12.0).reshape(3, 4)
    preds = jnp.asarray(preds)
    got = jax.jit(jax.vmap(lambda p, x: when(p, double, keep, (x, 1.0))))(preds, xs)
    np.testing.assert_array_equal(got, jnp.where(preds[:, None], 2 * xs + 1, xs))
    assert len(calls) == runs  # one batched evaluation, or none


def test_nested_vmaps_and_a_scan_reduce_the_predicate_level_by_level(counted):
    double, calls = counted
    preds = jnp.array([[True, False], [False, False]])
    xs = jnp.arange(16.0).reshape(2, 2, 4)
    nested = jax.jit(jax.vmap(jax.vmap(lambda p, x: when(p, double, keep, (x, 0.0)))))
    np.testing.assert_array_equal(nested(preds, xs), jnp.where(preds[..., None], 2 * xs, xs))
    assert len(calls) == 1
    calls.clear()
    nested(jnp.zeros((2, 2), bool), xs)
    assert not calls

    def run(anneal, x):  # the pattern of the solvers: a member's branch runs while step < its warm-up
        return jax.lax.scan(lambda c, t: (when(t < anneal, double, keep, (c, 0.0)), None), x, jnp.arange(5))[
            0
        ]

    calls.clear()
    got = jax.jit(jax.vmap(run))(jnp.array([1, 2]), jnp.ones((2, 3)))
    np.testing.assert_array_equal(got, [[2.0] * 3, [4.0] * 3])
    assert len(calls) == 2  # steps 0 and 1; steps 2-4 skipped for the whole batch
