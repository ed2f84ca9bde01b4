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
from jax import lax

__all__ = ["MLP", "LinearFeatures", "EnvInference", "LambdaNet", "flatten_params"]

_kernel_init = nn.initializers.xavier_uniform()
_bias_init = nn.initializers.zeros


class _Dense(nn.Module):
    """``nn.Dense`` (same parameter names, shapes and initialisers) that also runs features-first.

    With ``features_first`` the input is ``[d_in, n]`` and the output ``[features, n]`` (kernelᵀ·x): every
    elementwise operation then runs along the n contiguous examples and every contraction is one XLA CPU
    vectorises well, 2–3× faster than the row-major ``[n, d] @ [d, k]`` for the narrow layers of these
    models (see benchmarks/README.md).
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array, features_first: bool = False) -> jax.Array:
        d_in = x.shape[0] if features_first else x.shape[-1]
        kernel = self.param("kernel", _kernel_init, (d_in, self.features), jnp.float32)
        bias = self.param("bias", _bias_init, (self.features,), jnp.float32)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=None)
        if features_first:
            return lax.dot_general(kernel, x, (((0,), (0,)), ((), ()))) + bias[:, None]
        return lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ()))) + bias


class MLP(nn.Module):
    """Feature extractor Φ: Dense → ReLU → … → Dense; a linear model when ``hidden`` is empty.

    Attributes:
      hidden: widths of the hidden layers, e.g. ``(16,)`` for CelebA/Adult, ``()`` for the simulation.
      out_dim: number of outputs (1 for binary classification and regression, C for C classes).

    Input ``[n, d]``, or ``[d, n]`` with ``features_first=True`` (the same examples stored transposed; the
    training loops pass them so, which is faster on CPU); output ``[n]`` when ``out_dim == 1`` (logits of a
    binary or regression loss), else ``[n, out_dim]``. The layers are named ``Dense_0``, ``Dense_1``, … with
    ``kernel`` and ``bias`` parameters, as ``nn.Dense`` layers would be.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = MLP(hidden=(16,))
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 10)))
      >>> model.apply(params, jnp.ones((4, 10))).shape
      (4,)
      >>> model.apply(params, jnp.ones((10, 4)), features_first=True).shape
      (4,)
    """

    hidden: Sequence[int] = ()
    out_dim: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, features_first: bool = False) -> jax.Array:
        widths = (*self.hidden, self.out_dim)
        for i, width in enumerate(widths):
            x = _Dense(width, name=f"Dense_{i}")(x, features_first=features_first)
            if i < len(self.hidden):
                x = nn.relu(x)
        if features_first:  # [out_dim, n]
            return x[0] if self.out_dim == 1 else x.T
        return x[..., 0] if self.out_dim == 1 else x


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

    Input ``[n, d_in]``, or ``[d_in, n]`` with ``features_first=True``; output ``[n, width]`` features, or
    ``[n]`` logits with ``sum_features``.

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
    def __call__(self, x: jax.Array, features_first: bool = False) -> jax.Array:
        d_in = x.shape[0] if features_first else x.shape[-1]
        width = d_in if self.width is None else self.width
        init = _identity_init if self.identity_init else _kernel_init
        phi = self.param("kernel", init, (d_in, width))
        features = lax.dot_general(x, phi, (((0 if features_first else x.ndim - 1,), (0,)), ((), ())))
        return jnp.sum(features, axis=-1) if self.sum_features else features


class EnvInference(nn.Module):
    """Environment-inference network ρ(z) ∈ Δ^E (ZIN's ``InferEnv`` / ``InferEnvMultiClass``).

    Dense(hidden) → ReLU → Dense → sigmoid for E = 2 (one output q, environments (q, 1 − q)), softmax for
    E > 2. Feed it standardised z.

    Attributes:
      num_envs: number of inferred environments E ≥ 2.
      hidden: width of the hidden layer.

    Input ``[n, k]`` auxiliary variables, or ``[k, n]`` with ``features_first=True`` (faster on CPU); output
    ``[n, E]`` soft environment weights (rows sum to 1).

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
    def __call__(self, z: jax.Array, features_first: bool = False) -> jax.Array:
        if self.num_envs < 2:
            raise ValueError(f"num_envs must be >= 2 to infer environments, got {self.num_envs}")
        h = nn.relu(_Dense(self.hidden, name="Dense_0")(z, features_first=features_first))
        if self.num_envs == 2:
            q = nn.sigmoid(_Dense(1, name="Dense_1")(h, features_first=features_first))
            if features_first:
                # built [E, n] and returned transposed: the consumers contract environments-first
                # (`jaxirm.envs`), so the two transposes cancel and no [n, 2] interleaved array is written
                return jnp.stack([q[0], 1.0 - q[0]], axis=0).T
            return jnp.stack([q[..., 0], 1.0 - q[..., 0]], axis=-1)
        logits = _Dense(self.num_envs, name="Dense_1")(h, features_first=features_first)
        return nn.softmax(logits, axis=0).T if features_first else nn.softmax(logits, axis=-1)


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
