"""The released PyTorch code's penalties, rebuilt from their formulas, against jaxirm.

The authors' released code (github.com/laizhr/OOD-TV-IRM) scales the logits by one scalar dummy
classifier s, forms per-environment "risks" as masked means over *all* N examples,

    R̃_e(s) = (1/N) Σ_i A_ie ℓ(s f_i, y_i)        (= (m_e / N) R_e(s)),

takes G_e = dR̃_e/ds at s = 1 by autograd, and penalises

    IRM = Σ_e G_e²,        IRM-TV-ℓ1 = (Σ_e |G_e|)².

So its TV-ℓ1 is ``tv_l1(g, env_measure(envs, kind="empirical"))`` and its IRM is Σ_e (m_e/N)² g_e². The
functions ``released_*`` below are written from those formulas with `jax.grad` over a scalar s (the torch
autograd path); no PyTorch code is copied. Float64 throughout.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxirm
from jaxirm.losses import bce_with_logits, softmax_cross_entropy, squared_error


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


# ----------------------------------------------------------------------------------------------------------
# The released code's computations, from the formulas.


@functools.partial(jax.jit, static_argnums=0)
def released_two_env_grads(loss_fn, f, y, g):
    """ZIN / IRM-TV `irmv1(_tvl1)`: env 1 = mean(g ℓ), env 0 = mean((1 − g) ℓ), g a 0/1 mask or soft q."""

    def env1(s):
        return jnp.mean(g * loss_fn(s * f, y))

    def env0(s):
        return jnp.mean((1.0 - g) * loss_fn(s * f, y))

    return jnp.stack([jax.grad(env0)(1.0), jax.grad(env1)(1.0)])


@functools.partial(jax.jit, static_argnums=0)
def released_multi_env_grads(loss_fn, f, y, q):
    """`*_multi_class`: multi_loss = (ℓ[:, None] * q).mean(0), one autograd.grad per column."""

    def multi_loss(s):
        return (loss_fn(s * f, y)[:, None] * q).mean(0)

    return jnp.stack([jax.grad(lambda s, k=k: multi_loss(s)[k])(1.0) for k in range(q.shape[1])])


def released_tv_l1(grads):
    return jnp.sum(jnp.abs(grads)) ** 2


def released_irm(grads):
    return jnp.sum(grads**2)


@functools.partial(jax.jit, static_argnums=0)
def released_landcover_grads(loss_fn, f, y, q):
    """Landcover minibatch version: G_k of the even rows and of the odd rows separately."""
    even = released_multi_env_grads(loss_fn, f[0::2], y[0::2], q[0::2])
    odd = released_multi_env_grads(loss_fn, f[1::2], y[1::2], q[1::2])
    return even, odd


# ----------------------------------------------------------------------------------------------------------


def _binary(n, seed):
    rng = np.random.default_rng(seed)
    return jnp.asarray(2.0 * rng.normal(size=n)), jnp.asarray(rng.integers(0, 2, n).astype(np.float64))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _jaxirm_penalties(loss_fn, f, y, envs, num_envs=None):
    g = jaxirm.scale_grads(loss_fn, f, y, envs, num_envs=num_envs)
    mu = jaxirm.env_measure(envs, num_envs=num_envs, kind="empirical")
    mass = jaxirm.env_mass(envs, num_envs=num_envs)
    n = f.shape[0]
    return g, mu, jaxirm.tv_l1(g, mu), jnp.sum((mass / n) ** 2 * g**2)


@pytest.mark.parametrize("loss_fn", [bce_with_logits, squared_error], ids=["bce", "squared"])
def test_int_labels_two_unequal_envs(loss_fn):
    f, y = _binary(23, seed=0)
    if loss_fn is squared_error:
        y = y + jnp.asarray(np.random.default_rng(1).normal(size=23))
    labels = np.zeros(23, np.int32)
    labels[:16] = 1  # 16 vs 7 examples
    labels = np.random.default_rng(2).permutation(labels)
    released = released_two_env_grads(loss_fn, f, y, jnp.asarray(labels, jnp.float64))
    g, mu, tv_l1, irm = _jaxirm_penalties(loss_fn, f, y, jnp.asarray(labels), num_envs=2)
    # float64 throughout: env_measure of int labels follows the default float dtype (float64 under x64)
    np.testing.assert_allclose(tv_l1, released_tv_l1(released), rtol=1e-12)
    np.testing.assert_allclose(irm, released_irm(released), rtol=1e-12)
    np.testing.assert_allclose(released, np.array([7 / 23, 16 / 23]) * np.asarray(g), rtol=1e-12)
    # with unequal sizes the released penalty is NOT the papers' uniform one
    assert abs(float(jaxirm.tv_l1(g)) - float(released_tv_l1(released))) > 1e-3 * float(jaxirm.tv_l1(g))
    # train_nll = mean over all N = Σ_e μ_e R_e with the empirical measure
    risks = jax.jit(jaxirm.env_risks, static_argnums=(0, 4))(loss_fn, f, y, jnp.asarray(labels), 2)
    np.testing.assert_allclose(jnp.sum(mu * risks), jnp.mean(loss_fn(f, y)), rtol=1e-12)


def test_equal_size_envs_give_the_papers_uniform_penalties():
    f, y = _binary(20, seed=3)
    labels = jnp.asarray(np.random.default_rng(4).permutation(np.repeat([0, 1], 10)))
    released = released_two_env_grads(bce_with_logits, f, y, labels.astype(jnp.float64))
    g = jax.jit(jaxirm.scale_grads, static_argnums=(0, 4))(bce_with_logits, f, y, labels, 2)
    np.testing.assert_allclose(jaxirm.tv_l1(g), released_tv_l1(released), rtol=1e-12)
    # The released code's IRM term is ¼ Σ_e g_e² = ½ × the IRMv1 mean penalty
    np.testing.assert_allclose(released_irm(released), 0.5 * jaxirm.tv_l2(g), rtol=1e-12)


def test_zin_soft_weights_q_and_one_minus_q():
    f, y = _binary(17, seed=5)
    q = jnp.asarray(jax.nn.sigmoid(np.random.default_rng(6).normal(size=17)))
    weights = jnp.stack([1.0 - q, q], axis=1)  # env 0 = 1 − q, env 1 = q, as in the released code
    released = released_two_env_grads(bce_with_logits, f, y, q)
    g, mu, tv_l1, irm = _jaxirm_penalties(bce_with_logits, f, y, weights)
    np.testing.assert_allclose(tv_l1, released_tv_l1(released), rtol=1e-12)
    np.testing.assert_allclose(irm, released_irm(released), rtol=1e-12)
    np.testing.assert_allclose(mu, [1.0 - q.mean(), q.mean()], rtol=1e-12)


def test_zin_gradients_through_logits_and_q_match():
    """The double-backprop gradients agree too: w.r.t. the model's logits and w.r.t. the inferred q."""
    f, y = _binary(15, seed=7)
    q = jnp.asarray(jax.nn.sigmoid(np.random.default_rng(8).normal(size=15)))

    def released(x, p):
        return released_tv_l1(released_two_env_grads(bce_with_logits, x, y, p))

    def ours(x, p):
        a = jnp.stack([1.0 - p, p], axis=1)
        g = jaxirm.scale_grads(bce_with_logits, x, y, a)
        return jaxirm.tv_l1(g, jaxirm.env_measure(a, kind="empirical"))

    d_released = jax.jit(jax.grad(released, argnums=(0, 1)))(f, q)
    d_ours = jax.jit(jax.grad(ours, argnums=(0, 1)))(f, q)
    for a, b in zip(d_ours, d_released, strict=True):
        assert bool(jnp.any(b != 0))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss_fn", [bce_with_logits, softmax_cross_entropy], ids=["bce", "ce"])
def test_multi_class_k_env_soft_weights(loss_fn):
    rng = np.random.default_rng(9)
    n, num_envs = 19, 4
    if loss_fn is softmax_cross_entropy:
        f, y = jnp.asarray(rng.normal(size=(n, 3))), jnp.asarray(rng.integers(0, 3, n))
    else:
        f, y = _binary(n, seed=10)
    q = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, num_envs)) * 2.0), axis=1)
    released = released_multi_env_grads(loss_fn, f, y, q)
    g, mu, tv_l1, irm = _jaxirm_penalties(loss_fn, f, y, q)
    np.testing.assert_allclose(tv_l1, released_tv_l1(released), rtol=1e-12)
    np.testing.assert_allclose(irm, released_irm(released), rtol=1e-12)
    np.testing.assert_allclose(released, np.asarray(q.sum(0) / n) * np.asarray(g), rtol=1e-12)


def test_landcover_split_penalties():
    """Even/odd rows: the released products equal the split estimators with a half-mass measure."""
    rng = np.random.default_rng(11)
    n, num_envs = 20, 3
    f, y = _binary(n, seed=12)
    q = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, num_envs))), axis=1)
    even, odd = released_landcover_grads(bce_with_logits, f, y, q)
    # default halves: even rows a, odd rows b
    split = jax.jit(jaxirm.split_scale_grads, static_argnums=0)(bce_with_logits, f, y, q)
    mass_a, mass_b = q[0::2].sum(0), q[1::2].sum(0)
    n_a, n_b = 10, 10
    # released G^half_k = (m^half_k / N_half) g^half_k
    np.testing.assert_allclose(even, mass_a / n_a * split[0], rtol=1e-12)
    np.testing.assert_allclose(odd, mass_b / n_b * split[1], rtol=1e-12)
    product_measure = mass_a * mass_b / (n_a * n_b)
    np.testing.assert_allclose(jnp.sum(even * odd), jaxirm.tv_l2_split(split, product_measure), rtol=1e-12)
    np.testing.assert_allclose(
        jnp.sum(jnp.sqrt(jnp.abs(even * odd))) ** 2,
        jaxirm.tv_l1_split(split, jnp.sqrt(product_measure)),
        rtol=1e-12,
    )
