import jax
import jax.numpy as jnp

import jaxirm
from jaxirm.losses import bce_with_logits

x = jax.random.normal(jax.random.key(0), (8, 3))  # 8 examples, 3 features
y = (x[:, 0] > 0).astype(jnp.float32)  # binary labels
envs = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])  # two environments


def penalty(w):
    logits = x @ w  # [n]
    g = jaxirm.scale_grads(bce_with_logits, logits, y, envs, num_envs=2)  # [E]: g_e = dR_e/dw at w = 1
    return jaxirm.tv_l1(g)  # IRM-TV-l1: (mean_e |g_e|)^2


w = jnp.array([1.0, 0.5, -0.5])
print(f"penalty: {penalty(w):.4f}")  # a scalar >= 0
grad = jax.grad(penalty)(w)  # [3]: the gradient of the penalty in the model's parameters
print("gradient:", [round(v, 4) for v in grad.tolist()])
