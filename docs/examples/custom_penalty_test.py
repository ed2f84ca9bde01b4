"""Property-test a custom penalty with jaxirm.testing (hypothesis + the penalty checkers)."""

import jax.numpy as jnp
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxirm
from jaxirm import testing
from jaxirm.penalties import abs0


def tv_l1_5(grads, measure=None):
    """An ℓ^1.5 variant: (Σ μ |g|^1.5)^(4/3)."""
    mu = jnp.full(grads.shape, 1 / grads.shape[0]) if measure is None else measure
    return jnp.sum(mu * abs0(grads) ** 1.5) ** (4 / 3)


points = testing.env_counts().flatmap(lambda e: st.tuples(testing.env_grads(e), testing.measures(e)))


@settings(deadline=None)  # the first call of each shape compiles
@given(points)
def test_tv_l1_5(point):
    grads, measure = point
    testing.check_penalty(tv_l1_5, grads, measure, dominated_by=jaxirm.tv_l2)


if __name__ == "__main__":
    test_tv_l1_5()
    print("all properties hold")
