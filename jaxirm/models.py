"""Flax modules of the papers' architectures (OOD-TV paper, Table 1; arXiv:2502.19665): feature extractor
Φ, ρ(z) and λ_Ψ(vec Φ).

All layers use Xavier-uniform kernels and zero biases, as the released code does. Solvers accept any
``apply_fn(params, x)``, so these are conveniences, not requirements: a flax.linen module, a flax.nnx module
(the solver splits it into its graph and ``nnx.Param`` state) or an ``(init_fn, apply_fn)`` pair plugs in
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["MLP", "LinearFeatures", "EnvInference", "LambdaNet", "flatten_params"]

_kernel_init = nn.initializers.xavier_uniform()
_bias_init = nn.initializers.zeros


class MLP(nn.Module):
    """Feature extractor Φ: Dense → ReLU → … → Dense; a linear model when ``hidden`` is empty.

    Attributes:
      hidden: widths of the hidden layers, e.g. ``(16,)`` for CelebA/Adult, ``()`` for the simulation.
      out_dim: number of outputs (1 for binary classification and regression, C for C classes).

    Input ``[n, d]``; output ``[n]`` when ``out_dim == 1`` (logits of a binary or regression loss), else
    ``[n, out_dim]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = MLP(hidden=(16,))
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 10)))
      >>> model.apply(params, jnp.ones((4, 10))).shape
      (4,)
    """

    hidden: Sequence[int] = ()
    out_dim: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=_kernel_init, bias_init=_bias_init)(x))
        out = nn.Dense(self.out_dim, kernel_init=_kernel_init, bias_init=_bias_init)(x)
        return out[..., 0] if self.out_dim == 1 else out


def _identity_init(key, shape, dtype=jnp.float32):
    del key
    return jnp.eye(shape[0], shape[1], dtype=dtype)


class LinearFeatures(nn.Module):
    """The IRM paper's linear Φ for its SEM (arXiv 1907.02893, ``experiment_synthetic``): φ(x) = x·Φ.

    Φ is a ``[d_in, width]`` matrix without bias (``width`` defaults to d_in: the paper's d×d), initialised to
    the identity as the paper's code does (``identity_init=False``: Xavier-uniform). The prediction is
    w·φ(x) with the dummy w = 1, i.e. the linear coefficients β = Φ·1.

    Attributes:
      width: number of features d (default: the input dimension).
      identity_init: start from Φ = I (the paper's code), else Xavier-uniform.
      sum_features: return the logit Σ_j φ_j ``[n]`` (for ERM and scalar-dummy solvers) instead of the
        features ``[n, d]`` that ``irm(..., dummy="vector")`` needs.

    Input ``[n, d_in]``; output ``[n, width]`` features, or ``[n]`` logits with ``sum_features``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> phi = LinearFeatures()
      >>> params = phi.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> phi.apply(params, jnp.ones((2, 3))).shape
      (2, 3)
    """

    width: int | None = None
    identity_init: bool = True
    sum_features: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = x.shape[-1] if self.width is None else self.width
        init = _identity_init if self.identity_init else _kernel_init
        phi = self.param("kernel", init, (x.shape[-1], width))
        features = x @ phi
        return jnp.sum(features, axis=-1) if self.sum_features else features


class EnvInference(nn.Module):
    """Environment-inference network ρ(z) ∈ Δ^E (ZIN's ``InferEnv`` / ``InferEnvMultiClass``).

    Dense(hidden) → ReLU → Dense → sigmoid for E = 2 (one output q, environments (q, 1 − q)), softmax for
    E > 2. Feed it standardised z.

    Attributes:
      num_envs: number of inferred environments E ≥ 2.
      hidden: width of the hidden layer.

    Input ``[n, k]`` auxiliary variables; output ``[n, E]`` soft environment weights (rows sum to 1).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> rho = EnvInference(num_envs=2)
      >>> params = rho.init(jax.random.key(0), jnp.zeros((1, 1)))
      >>> rho.apply(params, jnp.linspace(-1, 1, 5)[:, None]).sum(axis=1)
      Array([1., 1., 1., 1., 1.], dtype=float32)
    """

    num_envs: int = 2
    hidden: int = 16

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if self.num_envs < 2:
            raise ValueError(f"num_envs must be >= 2 to infer environments, got {self.num_envs}")
        h = nn.relu(nn.Dense(self.hidden, kernel_init=_kernel_init, bias_init=_bias_init)(z))
        if self.num_envs == 2:
            q = nn.sigmoid(nn.Dense(1, kernel_init=_kernel_init, bias_init=_bias_init)(h))
            return jnp.concatenate([q, 1.0 - q], axis=-1)
        logits = nn.Dense(self.num_envs, kernel_init=_kernel_init, bias_init=_bias_init)(h)
        return nn.softmax(logits, axis=-1)


class LambdaNet(nn.Module):
    """The OOD-TV multiplier λ_Ψ(vec Φ) ≥ 0: Dense(hidden) → ReLU → Dense(1) → softplus.

    Its input is the flattened parameter vector of the model Φ (`flatten_params`), so λ depends on Φ and
    ∇_Φ λ flows into Φ's update (OOD-TV paper, eqs. 13–16).

    Attributes:
      hidden: width of the hidden layer (1 for the simulation, 16 or 32 for the real-data tasks).

    Input ``[P]`` (one parameter vector) or ``[b, P]``; output a scalar (or ``[b]``), ≥ 0.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> lam = LambdaNet(hidden=1)
      >>> params = lam.init(jax.random.key(0), jnp.zeros(11))
      >>> float(lam.apply(params, jnp.ones(11))) >= 0.0
      True
    """

    hidden: int = 16

    @nn.compact
    def __call__(self, phi: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(self.hidden, kernel_init=_kernel_init, bias_init=_bias_init)(phi))
        return nn.softplus(nn.Dense(1, kernel_init=_kernel_init, bias_init=_bias_init)(h))[..., 0]


def flatten_params(params: Any) -> jax.Array:
    """Concatenates every leaf of a parameter pytree into one vector (vec Φ), differentiably.

    Args:
      params: a pytree of arrays.

    Returns:
      ``[P]`` vector, P the total number of parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> flatten_params({"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}).shape
      (9,)
    """
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        return jnp.zeros((0,))
    return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])
