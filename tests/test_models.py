"""Flax modules of the OOD-TV paper's Table 1 (arXiv:2502.19665): Φ (MLP), ρ(z) (EnvInference),
λ_Ψ(vec Φ) (LambdaNet), flatten_params.

Every forward pass is compared with the same layers written out by hand in numpy from the parameter pytree.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import assert_within, f32_tol
from _xla import FAST

from jaxirm.models import MLP, EnvInference, LambdaNet, flatten_params


def _fast_jit(f):
    return jax.jit(f, compiler_options=FAST)


def _init_apply(module, seed, x_init, *inputs):
    """``(params, module.apply(params, inputs[0]), ...)`` in one compiled call."""

    def run(x_init, *inputs):
        params = module.init(jax.random.key(seed), x_init)
        return params, *[module.apply(params, v) for v in inputs]

    return jax.device_get(_fast_jit(run)(x_init, *inputs))


def _dense(p, x):
    return x @ np.asarray(p["kernel"]) + np.asarray(p["bias"])


def _relu(x):
    return np.maximum(x, 0.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def _np_mlp(params, x, num_hidden):
    p = params["params"]
    h = np.asarray(x, np.float64)
    for i in range(num_hidden):
        h = _relu(_dense(p[f"Dense_{i}"], h))
    return _dense(p[f"Dense_{num_hidden}"], h)


def _abs_layers(params, x, num_layers):
    """The same layers on |x|, |W|, |b| (ReLU dropped): Σ|terms| of every sum, the scale of float32 error
    bounds. Returns it with n, the number of rounded terms on the longest path (Σ (fan-in + 1) + 1)."""
    p = params["params"]
    h = np.abs(np.asarray(x, np.float64))
    n = 1
    for i in range(num_layers):
        kernel = np.abs(np.asarray(p[f"Dense_{i}"]["kernel"], np.float64))
        h = h @ kernel + np.abs(np.asarray(p[f"Dense_{i}"]["bias"], np.float64))
        n += kernel.shape[0] + 1
    return h, n


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(7, 10)).astype(np.float32)


# (hidden, out_dim, expected output shape for 7 examples, expected number of parameters for d = 10)
MLP_CASES = [
    ((), 1, (7,), 10 + 1),
    ((), 3, (7, 3), 10 * 3 + 3),
    ((16,), 1, (7,), 10 * 16 + 16 + 16 + 1),
    ((8, 4), 2, (7, 2), 10 * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2),
]


@pytest.mark.parametrize("hidden, out_dim, shape, count", MLP_CASES)
def test_mlp_shapes_and_forward(x, hidden, out_dim, shape, count):
    model = MLP(hidden=hidden, out_dim=out_dim)
    params, out = _init_apply(model, 0, x[:1], x)
    assert out.shape == shape
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == count
    expected = _np_mlp(params, x, len(hidden))
    scale, n = _abs_layers(params, x, len(hidden) + 1)
    if out_dim == 1:
        expected, scale = expected[:, 0], scale[:, 0]
    # float32 layers against float64: ≤ n·eps32·Σ|terms| (n = Σ fan-in + 1), 4·n·eps32 with room to spare
    assert_within(out, expected, f32_tol(n, scale))


def test_mlp_without_hidden_is_linear(x):
    model = MLP(hidden=())
    a, b = x[0], x[1]
    # f(αa + βb) = αf(a) + βf(b) + (1 − α − β)f(0) holds exactly only for an affine map.
    points = np.stack([0.3 * a + 1.7 * b, a, b, np.zeros_like(a)])
    params, f = _init_apply(model, 1, x[:1], points)
    assert list(params["params"]) == ["Dense_0"]
    size, n = _abs_layers(params, np.abs(points), 1)
    # four float32 evaluations of 11 terms and the float32 points: ≤ 4·(n + 3)·eps32·Σ coefficient·Σ|terms|
    tol = f32_tol(n + 3, size[0, 0] + 0.3 * size[1, 0] + 1.7 * size[2, 0] + 1.0 * size[3, 0])
    np.testing.assert_allclose(f[0], 0.3 * f[1] + 1.7 * f[2] + (1 - 0.3 - 1.7) * f[3], rtol=0, atol=tol)
    # and a hidden layer breaks it (ReLU), so the check can fail
    _, g = _init_apply(MLP(hidden=(16,)), 1, x[:1], points)
    assert abs(g[0] - (0.3 * g[1] + 1.7 * g[2] + (1 - 0.3 - 1.7) * g[3])) > 1e-3


@pytest.mark.parametrize("hidden", [(), (16,), (8, 4)])
def test_init_is_xavier_uniform_with_zero_biases(hidden):
    model = MLP(hidden=hidden)
    params = _init_apply(model, 2, jnp.zeros((1, 30)))[0]
    for layer in params["params"].values():
        kernel = np.asarray(layer["kernel"])
        fan_in, fan_out = kernel.shape
        # the float32 draw of U(-b, b): b and the scaled uniform are each rounded once, 4·2·eps32 relative
        assert np.all(np.abs(kernel) <= np.sqrt(6.0 / (fan_in + fan_out)) * (1 + f32_tol(2)))
        assert np.all(np.asarray(layer["bias"]) == 0.0)
        if kernel.size > 4:  # not all equal: a real random draw
            assert np.std(kernel) > 0


@pytest.mark.parametrize("num_envs", [2, 4])
@pytest.mark.parametrize("z_dim", [1, 3])
def test_env_inference_rows_are_distributions(num_envs, z_dim):
    rho = EnvInference(num_envs=num_envs, hidden=16)
    z = 3.0 * np.random.default_rng(z_dim).normal(size=(50, z_dim)).astype(np.float32)
    params, out = _init_apply(rho, 3, z[:1], z)
    assert out.shape == (50, num_envs)
    assert np.all(out >= 0.0) and np.all(out <= 1.0)
    # softmax rows: E exps, an E-term sum, E quotients, then an E-term numpy sum: ≤ (3E + 1)·eps32 relative
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=f32_tol(3 * num_envs + 1))
    p = params["params"]
    logits = _dense(p["Dense_1"], _relu(_dense(p["Dense_0"], z.astype(np.float64))))
    if num_envs == 2:
        q = _sigmoid(logits[:, 0])
        expected = np.stack([q, 1.0 - q], axis=1)
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected = e / e.sum(axis=1, keepdims=True)
    # logits off by ≤ n·eps32·Σ|terms| (sigmoid and softmax are 1-Lipschitz), then ≤ (3E + 1)·eps32 relative
    size, n = _abs_layers(params, z, 2)
    tol = f32_tol(n, size.max(axis=1, keepdims=True)) + f32_tol(3 * num_envs + 1) * np.abs(expected)
    assert_within(out, expected, tol)
    # The rows vary with z: the network is not a constant.
    assert np.ptp(out[:, 0]) > 1e-3


def test_env_inference_needs_two_envs():
    with pytest.raises(ValueError, match="num_envs"):
        jax.eval_shape(EnvInference(num_envs=1).init, jax.random.key(0), jnp.zeros((1, 1)))


@pytest.mark.parametrize(
    "hidden, size, scale", [(1, 11, 1.0), (16, 11, 100.0), (16, 977, 10.0), (32, 40, 1e3)]
)
def test_lambda_net_is_nonnegative_softplus(hidden, size, scale):
    lam = LambdaNet(hidden=hidden)
    rng = np.random.default_rng(size)
    inputs = (scale * rng.normal(size=(64, size))).astype(np.float32)
    params, out, single = _init_apply(lam, size, inputs[0], inputs, inputs[0])
    assert out.shape == (64,) and single.shape == ()
    assert np.all(out >= 0.0)
    p = params["params"]
    pre = _dense(p["Dense_1"], _relu(_dense(p["Dense_0"], inputs.astype(np.float64))))[:, 0]
    # float32 layers: ≤ n·eps32·Σ|terms| (n = size + hidden + 3, softplus is 1-Lipschitz), plus the softplus's
    # own 3 roundings; the single example sums its `size` terms in another order than the batch (a
    # difference of 1.2e-6 relative on an AMD EPYC at size 977), within twice the same bound.
    size_abs, n = _abs_layers(params, inputs, 2)
    tol = f32_tol(n, size_abs[:, 0]) + f32_tol(3) * np.abs(_softplus(pre))
    assert_within(out, _softplus(pre), tol)
    assert_within(single, out[0], tol[0])
    # The last layer flipped to push every pre-activation negative: the softplus still keeps λ ≥ 0.
    flipped = jax.tree.map(np.asarray, params)
    flipped["params"]["Dense_1"]["kernel"] = -np.abs(flipped["params"]["Dense_1"]["kernel"])
    assert np.all(np.asarray(_fast_jit(lam.apply)(flipped, inputs)) >= 0.0)


# OOD-TV paper, Table 1: the λ input sizes are the parameter counts of Φ.
TABLE1 = [
    ("simulation Linear(10,1)", MLP(hidden=()), 10, 11),
    ("CelebA", MLP(hidden=(16,)), 512, 8225),
    ("Adult", MLP(hidden=(16,)), 59, 977),
    ("House Price", MLP(hidden=(32,)), 15, 545),
]


@pytest.mark.parametrize("name, model, in_dim, count", TABLE1, ids=[c[0] for c in TABLE1])
def test_flatten_params_length_matches_table1(name, model, in_dim, count):
    shape = jax.eval_shape(
        lambda: flatten_params(model.init(jax.random.key(0), jnp.zeros((1, in_dim))))
    ).shape
    assert shape == (count,)


def test_flatten_params_is_differentiable_and_ordered():
    params = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([10.0, 11.0])}
    weights = jnp.arange(8.0) + 1.0
    vec, grads = _fast_jit(
        lambda p: (flatten_params(p), jax.grad(lambda q: jnp.sum(weights * flatten_params(q)))(p))
    )(params)
    np.testing.assert_array_equal(vec, [0, 1, 2, 3, 4, 5, 10, 11])
    np.testing.assert_array_equal(grads["a"], np.arange(1.0, 7.0).reshape(2, 3))
    np.testing.assert_array_equal(grads["b"], [7.0, 8.0])
    assert flatten_params({}).shape == (0,)
