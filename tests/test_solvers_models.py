"""What solvers accept as a model (flax.linen, flax.nnx, a pair of functions) and as an optimizer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tolerance import assert_within, f32_tol
from flax import nnx

import jaxirm
from jaxirm.datasets import logit_z
from jaxirm.models import MLP, flatten_params
from jaxirm.solvers import Batch, irm, ood_tv


class NnxLinear(nnx.Module):
    """The nnx twin of ``MLP()`` (one Dense layer, logits ``[n]``)."""

    def __init__(self, din, rngs):
        self.dense = nnx.Linear(din, 1, rngs=rngs)

    def __call__(self, x):
        return self.dense(x)[:, 0]


@pytest.fixture(scope="module")
def data():
    train, test = logit_z(0, n_train=1000, n_test=1000)
    return Batch(train.x, train.y, train.envs, z=train.z), Batch(test.x, test.y, test.envs)


def _twins(x):
    """A linen model with fixed weights and an nnx module holding the same weights."""
    params = MLP().init(jax.random.key(3), x[:1])
    linen = (lambda key, x: params, MLP().apply)  # the linen model's own apply, started from `params`
    module = NnxLinear(x.shape[1], nnx.Rngs(0))
    module.dense.kernel[...] = params["params"]["Dense_0"]["kernel"]
    module.dense.bias[...] = params["params"]["Dense_0"]["bias"]
    return linen, module


@pytest.mark.parametrize(
    "factory",
    [
        functools.partial(irm, penalty="tv_l1", lam=100.0, anneal_steps=50),
        functools.partial(ood_tv, base="irm", penalty="tv_l1", lam=100.0, anneal_steps=50),
    ],
    ids=["irm-tv-l1", "ood-tv-irm-l1"],
)
def test_nnx_module_trains_like_the_equivalent_linen_model(data, factory):
    train, test = data
    linen, module = _twins(train.x)
    runs = [
        jaxirm.fit(factory(model, lr=0.02, l2=0.002), jax.random.key(0), train, 150, test=test, eval_every=50)
        for model in (linen, module)
    ]
    a, b = (jax.tree_util.tree_leaves(r.state.params) for r in runs)
    assert [x.shape for x in a] == [x.shape for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6)
    for name in ("test_mean", "test_worst"):
        final = [r.selection["final"][name] for r in runs]
        np.testing.assert_allclose(final[0], final[1], atol=1e-6)
    np.testing.assert_allclose(runs[0].history["loss"], runs[1].history["loss"], rtol=2e-5, atol=1e-6)
    # The user's module is not mutated by training.
    initial = linen[0](None, None)["params"]["Dense_0"]["kernel"]
    np.testing.assert_array_equal(module.dense.kernel[...], initial)


def test_nnx_module_params_are_its_param_state(data):
    train, _ = data
    module = NnxLinear(train.x.shape[1], nnx.Rngs(0))
    solver = irm(module, penalty="tv_l2")
    state = solver.init(jax.random.key(0), train)
    assert isinstance(state.params, nnx.State)
    np.testing.assert_array_equal(state.params["dense"]["kernel"][...], module.dense.kernel[...])
    logits = solver.predict(state, train.x)
    # two float32 evaluations of d + 1 terms: ≤ 4·(d + 2)·eps32·(|x| @ |W| + |b|) apart
    kernel, bias = np.asarray(module.dense.kernel[...]), np.asarray(module.dense.bias[...])
    scale = np.abs(np.asarray(train.x)) @ np.abs(kernel) + np.abs(bias)
    assert_within(logits, module(train.x), f32_tol(train.x.shape[1] + 2, scale.reshape(np.shape(logits))))


def test_nnx_class_is_initialised_per_seed_and_sweeps(data):
    train, test = data
    solver = irm(functools.partial(NnxLinear, train.x.shape[1]), penalty="tv_l1", lr=0.02, anneal_steps=20)
    k0 = solver.init(jax.random.key(0), train).params["dense"]["kernel"][...]
    k1 = solver.init(jax.random.key(1), train).params["dense"]["kernel"][...]
    assert not np.allclose(k0, k1)
    sweep = jaxirm.sweep(solver, train, 40, seeds=2, grid={"lam": [1.0, 10.0]}, test=test, eval_every=20)
    kernels = np.asarray(jax.tree_util.tree_leaves(sweep.state.params)[1])
    assert kernels.shape[0] == 4 and not np.allclose(kernels[0], kernels[2])  # seeds 0 and 1, same lam
    assert np.all(np.isfinite(sweep.selection["final"]["test_mean"]))


def test_nnx_module_with_stateful_layers_runs_under_jit(data):
    # BatchNorm writes its statistics when called in training mode; the solver's apply stays pure.
    class Net(nnx.Module):
        def __init__(self, din, rngs):
            self.dense = nnx.Linear(din, 4, rngs=rngs)
            self.norm = nnx.BatchNorm(4, rngs=rngs)
            self.out = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(jax.nn.relu(self.norm(self.dense(x))))[:, 0]

    train, _ = data
    module = Net(train.x.shape[1], nnx.Rngs(0))
    solver = irm(module, penalty="tv_l1", lam=10.0, anneal_steps=2)
    result = jaxirm.fit(solver, jax.random.key(0), train, 4)
    assert np.all(np.isfinite(result.history["loss"]))
    np.testing.assert_array_equal(module.norm.mean[...], jnp.zeros(4))


def test_optax_multisteps_is_accepted(data):
    train, _ = data
    inner = optax.adam(0.05)
    solver = irm(MLP(), penalty="tv_l1", optimizer=optax.MultiSteps(inner, every_k_schedule=2))
    state = solver.init(jax.random.key(0), train)
    step = jax.jit(solver.step)
    after_one, _ = step(state, train)
    after_two, _ = step(after_one, train)
    p0, p1, p2 = (flatten_params(s.params) for s in (state, after_one, after_two))
    np.testing.assert_array_equal(p0, p1)  # the first mini-step only accumulates the gradient
    assert not np.allclose(p0, p2)


@pytest.mark.parametrize("bad", [object(), "adam", optax.adam])
def test_non_optimizers_are_rejected(bad):
    with pytest.raises(TypeError, match="optimizer must be an optax optimizer"):
        irm(MLP(), optimizer=bad)


@pytest.mark.parametrize("bad", [object(), nnx.Linear, (lambda k, x: None,)])
def test_non_models_are_rejected(bad):
    with pytest.raises(TypeError, match="model must be"):
        irm(bad)
