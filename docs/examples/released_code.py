import jax
import jax.numpy as jnp

import jaxirm
from jaxirm.losses import bce_with_logits

k_f, k_y = jax.random.split(jax.random.key(1))
logits = jax.random.normal(k_f, (10,))
y = jax.random.bernoulli(k_y, 0.5, (10,)).astype(jnp.float32)
envs = jnp.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])  # unequal sizes: m = (7, 3), n = 10
n = logits.shape[0]


# What the released PyTorch code computes: masked means over all n, differentiated at a scalar scale s = 1.
def code_risks(s):
    nll = bce_with_logits(s * logits, y)
    return jnp.stack([jnp.mean(nll * (envs == 0)), jnp.mean(nll * (envs == 1))])  # (m_e / n) R_e


G = jax.jacobian(code_risks)(1.0)  # G_e = (m_e / n) g_e
code_tv_l1 = (jnp.abs(G[0]) + jnp.abs(G[1])) ** 2
code_irm = G[0] ** 2 + G[1] ** 2

# The same numbers from the per-environment gradients and the empirical measure mu_e = m_e / n.
g = jaxirm.scale_grads(bce_with_logits, logits, y, envs, num_envs=2)
mu = jaxirm.env_measure(envs, num_envs=2, kind="empirical")
assert jnp.allclose(code_tv_l1, jaxirm.tv_l1(g, mu))
assert jnp.allclose(code_irm, jnp.sum((mu * g) ** 2))  # not tv_l2(g, mu) = sum(mu * g**2)

# The papers' formulas use the uniform measure instead; with unequal sizes the numbers differ.
print(f"released code: {float(code_tv_l1):.5f}, papers (uniform mu): {float(jaxirm.tv_l1(g)):.5f}")
