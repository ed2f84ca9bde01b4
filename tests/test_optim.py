"""The OOD-TV convergent step (Theorem 3): θ_{k+1} = θ_k − lr · g_k / (k^p ‖g_k‖), 0 where g_k = 0."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tolerance import f32_tol
from _xla import FAST

from jaxirm.optim import convergent_sgd, scale_by_convergent_step


def _jitted(opt):
    return jax.jit(opt.init, compiler_options=FAST), jax.jit(opt.update, compiler_options=FAST)


def _grads(seed):
    rng = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
        "b": jnp.asarray(10.0 * rng.normal(size=(4,)), jnp.float32),
    }


def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(leaf, np.float64) ** 2) for leaf in jax.tree.leaves(tree))))


# float32 update −lr·g/(k^p‖g‖): a sum of ≤ 10 squares, a sqrt, k^p (a pow), a product and a quotient:
# ≤ (10 + 6)·eps32 relative per element, and the same for the norms of the updates
RTOL = f32_tol(10 + 6)

# (learning rate, power p, per_tensor)
CASES = [(1.0, 1.0001, False), (0.1, 2.0, False), (3.0, 0.5, False), (1.0, 1.0001, True), (0.5, 1.5, True)]


@pytest.mark.parametrize("lr, power, per_tensor", CASES)
def test_update_is_lr_over_k_to_the_p_along_minus_g(lr, power, per_tensor):
    init, update = _jitted(convergent_sgd(lr, power, per_tensor=per_tensor))
    state = init(_grads(0))
    for k in range(1, 7):
        g = _grads(k)  # a fresh gradient every step: the norm never depends on past gradients
        updates, state = update(g, state)
        step = lr / k**power
        for name in g:
            gi, ui = np.asarray(g[name], np.float64), np.asarray(updates[name], np.float64)
            denom = np.linalg.norm(gi) if per_tensor else _norm(g)
            np.testing.assert_allclose(ui, -step * gi / denom, rtol=RTOL)
        if per_tensor:
            for name in g:
                np.testing.assert_allclose(np.linalg.norm(np.asarray(updates[name])), step, rtol=RTOL)
            # Leaves normalised separately: the global norm is √(#leaves) · step, not step.
            np.testing.assert_allclose(_norm(updates), np.sqrt(2.0) * step, rtol=RTOL)
        else:
            np.testing.assert_allclose(_norm(updates), step, rtol=RTOL)


def test_scale_by_convergent_step_has_no_sign_flip():
    init, update = _jitted(scale_by_convergent_step(2.0))
    g = {"a": jnp.array([3.0, 4.0])}
    state = init(g)
    u1, state = update(g, state)
    u2, state = update(g, state)
    # 2 squares summed, a sqrt, k^p, a product and a quotient: ≤ 6·eps32 relative
    np.testing.assert_allclose(u1["a"], [0.6, 0.8], rtol=f32_tol(6))
    np.testing.assert_allclose(u2["a"], [0.15, 0.2], rtol=f32_tol(6))
    assert int(state.count) == 2


@pytest.mark.parametrize("per_tensor", [False, True])
def test_zero_gradient_gives_zero_update(per_tensor):
    init, update = _jitted(convergent_sgd(1.0, 1.0001, per_tensor=per_tensor))
    zeros = jax.tree.map(jnp.zeros_like, _grads(0))
    state = init(zeros)
    updates, state = update(zeros, state)
    for leaf in jax.tree.leaves(updates):
        assert np.all(np.isfinite(leaf)) and np.all(np.asarray(leaf) == 0.0)
    # The step counter still advances: the next nonzero gradient gets k = 2.
    g = _grads(1)
    updates, _ = update(g, state)
    expected = 1.0 / 2**1.0001
    if per_tensor:
        np.testing.assert_allclose(np.linalg.norm(np.asarray(updates["w"])), expected, rtol=RTOL)
    else:
        np.testing.assert_allclose(_norm(updates), expected, rtol=RTOL)


def test_per_tensor_zero_leaf_stays_zero():
    g = {"w": jnp.zeros((3, 2)), "b": jnp.array([0.0, 3.0, 4.0, 0.0])}
    g2 = {"w": jnp.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]), "b": jnp.array([0.0, 10.0, 0.0, 0.0])}
    for per_tensor in (True, False):
        init, update = _jitted(convergent_sgd(1.0, 1.0, per_tensor=per_tensor))
        updates, _ = update(g, init(g))
        np.testing.assert_array_equal(updates["w"], np.zeros((3, 2)))
        np.testing.assert_allclose(updates["b"], [0.0, -0.6, -0.8, 0.0], rtol=RTOL)
        # With two nonzero leaves the two modes differ.
        updates, _ = update(g2, init(g2))
        w = -1.0 if per_tensor else -1.0 / np.sqrt(101.0)
        np.testing.assert_allclose(updates["w"], [[w, 0.0], [0.0, 0.0], [0.0, 0.0]], rtol=RTOL)


@pytest.mark.parametrize("per_tensor", [False, True])
def test_jit_and_scan_match_eager(per_tensor):
    opt = convergent_sgd(0.7, 1.3, per_tensor=per_tensor)
    grads = [_grads(k) for k in range(5)]
    state = opt.init(grads[0])
    eager = []
    for g in grads:
        u, state = opt.update(g, state)
        eager.append(u)
    update = jax.jit(opt.update)
    state = jax.jit(opt.init)(grads[0])
    for g, ref in zip(grads, eager, strict=True):
        u, state = update(g, state)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL), u, ref)  # both float32
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)
    _, scanned = jax.jit(lambda s, gs: jax.lax.scan(lambda c, g: opt.update(g, c)[::-1], s, gs))(
        opt.init(grads[0]), stacked
    )
    for k, ref in enumerate(eager):
        jax.tree.map(lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=RTOL), scanned, ref)


def test_schedule_learning_rate():
    schedule = optax.linear_schedule(1.0, 0.0, transition_steps=4)
    init, update = _jitted(convergent_sgd(schedule, 2.0))
    g = _grads(3)
    state = init(g)
    for k in range(1, 5):
        updates, state = update(g, state)
        # the schedule adds 2 roundings to the update's 16
        np.testing.assert_allclose(_norm(updates), float(schedule(k - 1)) / k**2, rtol=f32_tol(10 + 6 + 2))


def test_iterates_move_at_most_the_summed_steps():
    # Theorem 3: ‖θ_K − θ_0‖ ≤ Σ_k lr/k^p whatever the gradients (here an adversarial, rotating sequence).
    lr, power = 0.5, 1.5
    opt = convergent_sgd(lr, power)
    rng = np.random.default_rng(0)
    grads = jnp.asarray(rng.normal(size=(29, 3)) * 10.0 ** rng.integers(-3, 4, size=(29, 1)), jnp.float32)

    def run(grads):
        def body(carry, g):
            params, state = carry
            updates, state = opt.update(g, state)
            return (optax.apply_updates(params, updates), state), None

        params = jnp.zeros(3)
        return jax.lax.scan(body, (params, opt.init(params)), grads)[0][0]

    params = jax.jit(run, compiler_options=FAST)(grads)
    bound = sum(lr / k**power for k in range(1, 30))
    assert float(jnp.linalg.norm(params)) <= bound + 1e-5


@pytest.mark.parametrize("power", [0, 0.0, -1.0, True, "2", None])
def test_invalid_power_raises(power):
    with pytest.raises(ValueError, match="power"):
        scale_by_convergent_step(power)
    with pytest.raises(ValueError, match="power"):
        convergent_sgd(1.0, power)


@pytest.mark.parametrize("lr", [0.0, -1.0])
def test_invalid_learning_rate_raises(lr):
    with pytest.raises(ValueError, match="learning_rate"):
        convergent_sgd(lr)
