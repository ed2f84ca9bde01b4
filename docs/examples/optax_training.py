import jax
import jax.numpy as jnp
import optax

import jaxirm
from jaxirm.losses import bce_with_logits


def make_env(key, n, p_spurious):
    """x = [invariant feature (agrees with y 75% of the time), spurious feature (p_spurious)] + noise."""
    k_y, k_inv, k_sp, k_noise = jax.random.split(key, 4)
    y = jax.random.bernoulli(k_y, 0.5, (n,)).astype(jnp.float32)
    sign = 2.0 * y - 1.0
    inv = jnp.where(jax.random.bernoulli(k_inv, 0.25, (n,)), -sign, sign)
    sp = jnp.where(jax.random.bernoulli(k_sp, 1.0 - p_spurious, (n,)), -sign, sign)
    x = jnp.stack([inv, sp], axis=1) + 0.5 * jax.random.normal(k_noise, (n, 2))
    return x, y


k0, k1, k_test = jax.random.split(jax.random.key(0), 3)
x0, y0 = make_env(k0, 1000, p_spurious=0.95)  # training environment 0
x1, y1 = make_env(k1, 1000, p_spurious=0.70)  # training environment 1
x = jnp.concatenate([x0, x1])
y = jnp.concatenate([y0, y1])
envs = jnp.repeat(jnp.arange(2), 1000)  # int labels [n]
x_test, y_test = make_env(k_test, 2000, p_spurious=0.10)  # the spurious correlation flips at test time


def apply_fn(params, x):
    return x @ params["w"] + params["b"]  # logits [n]


def loss_fn(params, lam):
    logits = apply_fn(params, x)
    nll = jnp.mean(bce_with_logits(logits, y))
    g = jaxirm.scale_grads(bce_with_logits, logits, y, envs, num_envs=2)
    return nll + lam * jaxirm.tv_l1(g), g


optimizer = optax.adam(1e-2)


@jax.jit  # lam is a traced argument: one compilation serves every value
def train_step(params, opt_state, lam):
    (loss, g), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, lam)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, g


def accuracy(params, x, y):
    return jnp.mean((apply_fn(params, x) > 0) == (y > 0.5))


for lam in (0.0, 1000.0):  # ERM, then IRM-TV-l1
    params = {"w": jnp.zeros(2), "b": jnp.zeros(())}
    opt_state = optimizer.init(params)
    for _ in range(3000):
        params, opt_state, g = train_step(params, opt_state, lam)
    w_inv, w_sp = params["w"].tolist()
    print(
        f"lambda = {lam:6.0f}: w_inv = {w_inv:.2f}, w_sp = {w_sp:.2f}, "
        f"|g| = {jnp.abs(g).max():.3f}, test accuracy = {accuracy(params, x_test, y_test):.3f}"
    )
