"""The features-first path: models on ``[d, n]`` inputs, and solver steps on a batch whose ``xt``/``zt`` the
loops filled, compute what the row-major path computes (same parameters, same outputs within the float
error bound of a reordered contraction), and the loops fill the copies only where a solver reads them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import EPS32, FLOAT64_NOISE, STORED_F32, assert_within, f32_tol
from _xla import FAST

import jaxirm
from jaxirm._iterate import features_first
from jaxirm.datasets.synthetic import logit_z
from jaxirm.models import MLP, EnvInference, LinearFeatures
from jaxirm.solvers import Batch, eiil, erm, irm, lff, minimax, ood_tv, tiva

X = np.random.default_rng(0).normal(size=(37, 6)).astype(np.float32)

MODELS = [
    ("linear", MLP(), 0),
    ("linear-3-out", MLP(out_dim=3), 0),
    ("mlp-16", MLP(hidden=(16,)), 16),
    ("mlp-8-4-3-out", MLP(hidden=(8, 4), out_dim=3), 12),
    ("rho-2", EnvInference(num_envs=2, hidden=16), 16),
    ("rho-3", EnvInference(num_envs=3, hidden=8), 8),
    ("linear-features", LinearFeatures(), 0),
    ("linear-features-sum", LinearFeatures(width=4, identity_init=False, sum_features=True), 4),
]


def _abs_forward(params, x):
    """Σ|terms| of every output: the network run in float64 on |x| with |W|, |b| and no activation, which
    bounds the magnitude of each layer's sum (ReLU and sigmoid are 1-Lipschitz)."""
    h = np.abs(np.asarray(x, np.float64))
    layers = params["params"]
    names = sorted(layers, key=lambda k: int(k.split("_")[-1]) if "_" in k else 0)
    if "kernel" in layers:  # LinearFeatures: one kernel, no bias
        return h @ np.abs(np.asarray(layers["kernel"], np.float64))
    for name in names:
        h = h @ np.abs(np.asarray(layers[name]["kernel"], np.float64)) + np.abs(layers[name]["bias"])
    return h


@pytest.mark.parametrize("name, model, hidden", MODELS, ids=[m[0] for m in MODELS])
def test_models_take_features_first_inputs(name, model, hidden):
    params = model.init(jax.random.key(0), X[:1])
    rows = np.asarray(jax.jit(model.apply)(params, X))
    cols = np.asarray(jax.jit(lambda p, xt: model.apply(p, xt, features_first=True))(params, X.T))
    assert cols.shape == rows.shape
    # Both orders sum the same d_in (+ hidden) products per output, rounded in another order: within the
    # bound of n = d_in + hidden + 4 rounded terms (the 4: bias, activation, a sum of features) of size
    # Σ|terms|. Sigmoid/softmax outputs are 1-Lipschitz in their inputs.
    scale = _abs_forward(params, X)
    if isinstance(model, EnvInference) or getattr(model, "sum_features", False):
        scale = np.max(scale, axis=-1, keepdims=True) * (
            1 if isinstance(model, EnvInference) else scale.shape[-1]
        )
    scale = np.broadcast_to(scale[..., 0] if rows.ndim == 1 else scale, rows.shape)
    assert_within(cols, rows, f32_tol(X.shape[1] + hidden + 4, scale), name)


def test_parameters_keep_the_flax_dense_names_and_values():
    import flax.linen as nn

    class Reference(nn.Module):  # the nn.Dense stack MLP was before it took features-first inputs
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(16, kernel_init=nn.initializers.xavier_uniform())(x))
            return nn.Dense(1, kernel_init=nn.initializers.xavier_uniform())(x)[..., 0]

    ours, ref = MLP(hidden=(16,)).init(jax.random.key(3), X[:1]), Reference().init(jax.random.key(3), X[:1])
    assert jax.tree.structure(ours) == jax.tree.structure(ref)
    jax.tree.map(np.testing.assert_array_equal, ours, ref)
    np.testing.assert_array_equal(MLP(hidden=(16,)).apply(ours, X), Reference().apply(ref, X))


@pytest.fixture(scope="module")
def data():
    train, _ = logit_z(0, n_train=300, n_test=8)
    return Batch(jnp.asarray(train.x), jnp.asarray(train.y), jnp.asarray(train.envs), jnp.asarray(train.z))


GAMES = [
    ("erm", lambda m: erm(m)),
    ("irm-tv-l1", lambda m: irm(m, penalty="tv_l1")),
    ("vrex", lambda m: irm(m, penalty="vrex")),
    ("zin", lambda m: minimax(m, penalty="tv_l2")),
    ("ood-tv-irm-l2", lambda m: ood_tv(m, base="irm", penalty="tv_l2", lam_hidden=1)),
    # (OOD-TV-Minimax-ℓ1 is left out: at initialisation its penalty is nearly flat in ρ, whose gradient is
    # then round-off that Adam scales up to lr-sized steps — see test_solvers — whatever the layout.)
    ("ood-tv-minimax-l2", lambda m: ood_tv(m, base="minimax", penalty="tv_l2")),
    ("tiva", lambda m: tiva(m, anneal_steps=1)),
    ("lff", lambda m: lff(m)),
    ("eiil", lambda m: eiil(m, reference_steps=1, infer_steps=1)),  # step 0: reference, step 1: inference
]


@pytest.mark.parametrize("name, make", GAMES, ids=[g[0] for g in GAMES])
def test_a_step_on_features_first_copies_equals_the_row_major_step(data, name, make):
    """One step in float64 from the same state, once on the batch as given and once on its features-first
    copies (TIVA: two steps, so the second runs after its warm-up, with the penalty on)."""
    solver = make(MLP(hidden=(4,)))
    assert solver.features_first
    hp = {"lam": 100.0, "anneal_steps": 1.0} if "lam" in solver.defaults else None
    with jax.enable_x64(True):
        batch = jax.tree.map(
            lambda a: jnp.asarray(np.asarray(a, np.float64)) if a.dtype.kind == "f" else a, data
        )
        state = solver.init(jax.random.key(1), batch, hp)
        filled = features_first(batch)
        assert filled.xt.shape == batch.x.shape[::-1] and filled.zt.shape == batch.z.shape[::-1]

        def steps(b):
            s = state
            for _ in range(2):
                s, metrics = solver.step(s, b)
            return s, metrics

        run = jax.jit(steps, compiler_options=FAST)
        (rows, m_rows), (cols, m_cols) = run(batch), run(filled)
    # The two programs compute the same float64 values up to reordered sums (≤ 1e-12 relative here); the
    # parameters are float32, so each side rounds them once: within one float32 rounding (STORED_F32) of each
    # other, and an Adam update moves by lr·(relative change of its gradient, itself one float32 rounding).
    for leaf_r, leaf_c in zip(
        jax.tree.leaves((rows.params, rows.dual_params)),
        jax.tree.leaves((cols.params, cols.dual_params)),
        strict=True,
    ):
        r = np.asarray(leaf_r, np.float64)
        assert_within(leaf_c, r, STORED_F32 * np.abs(r) + 2 * 1e-3 * 2 * EPS32 + FLOAT64_NOISE, name)
    for key in ("loss", "penalty") if "penalty" in m_rows else ("loss", "risk"):
        assert_within(m_cols[key], m_rows[key], STORED_F32 * abs(float(m_rows[key])) + FLOAT64_NOISE, key)


def test_only_models_that_take_features_first_inputs_get_the_copies(data):
    init, apply = MLP().init, MLP().apply
    pair = irm((lambda key, x: init(key, x[:1]), apply), penalty="tv_l1")
    assert not pair.features_first  # a user's (init, apply) pair: its step reads x only
    # ZIN's ρ is the library's EnvInference, so the minimax game reads zt even with a user's Φ
    assert minimax((lambda key, x: init(key, x[:1]), apply), penalty="tv_l2").features_first
    assert eiil(MLP(), reference_steps=2, infer_steps=2).features_first  # its phases read xt

    class Wrapped(MLP):  # a subclass may override __call__: never handed [d, n] inputs
        pass

    assert not irm(Wrapped(), penalty="tv_l1").features_first


def test_run_fills_the_copies_outside_the_loop_and_trains_like_the_row_major_solver(data):
    solver = irm(MLP(), penalty="tv_l1")
    state = solver.init(jax.random.key(0), data, {"lam": 10.0, "anneal_steps": 2.0})
    run = jax.jit(jaxirm.run, static_argnums=(0, 3))
    text = run.lower(solver, state, data, 5).as_text()
    assert text.count("stablehlo.transpose") >= 1  # x.T built once in the program
    fast, _ = run(solver, state, data, 5)
    slow, _ = run(solver._replace(features_first=False), state, data, 5)
    # 5 Adam steps of a linear model: each update lr·m/(√v + ε) has the relative error of its gradient, a
    # 300-term sum (f32_tol(300) relative), accumulated over 5 steps, on parameters stored in float32
    lr = float(solver.defaults["lr"])
    for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(slow.params), strict=True):
        b = np.asarray(b, np.float64)
        assert_within(a, b, 5 * (lr * f32_tol(300) + STORED_F32 * np.abs(b)), "params")


def test_minibatches_and_images_keep_the_batch_as_given(data):
    solver = irm(MLP(), penalty="tv_l1")
    state = solver.init(jax.random.key(0), data)
    seen = []

    def spy(state, batch):
        seen.append(batch)
        return solver.step(state, batch)

    watched = solver._replace(step=spy)
    jaxirm.run(watched, state, data, 2, key=jax.random.key(1), batch_size=50)
    assert seen[-1].xt is None and seen[-1].zt is None  # a fresh minibatch every step: no copy
    jaxirm.run(watched, state, data, 2)
    assert seen[-1].xt is not None and seen[-1].zt is not None
    images = Batch(jnp.zeros((4, 2, 3)), jnp.zeros(4), jnp.zeros(4, jnp.int32))
    assert features_first(images).xt is None


def _rho_envs(rho, zs):
    """ρ(zs) ``[n, 2]`` in float64 from ρ's parameters (ZIN's EnvInference: Dense → ReLU → Dense → σ) and a
    bound on each output's float32 error: the network's Σ|terms| (`_abs_forward`) over its hidden + inputs."""
    layers = rho["params"]
    w0, b0 = (np.asarray(layers["Dense_0"][k], np.float64) for k in ("kernel", "bias"))
    w1, b1 = (np.asarray(layers["Dense_1"][k], np.float64) for k in ("kernel", "bias"))
    q = 1.0 / (1.0 + np.exp(-(np.maximum(zs @ w0 + b0, 0.0) @ w1 + b1)[:, 0]))
    scale = _abs_forward(rho, zs)[:, 0]
    return np.stack([q, 1.0 - q], axis=1), f32_tol(zs.shape[1] + w0.shape[1] + 4, scale)[:, None]


@pytest.mark.parametrize("name", ["zin", "tiva"])
def test_kept_environments_are_rho_of_the_current_batch(data, name):
    """Once ρ (and TIVA's gates) stop moving, the loops' steps read ρ's environments kept in the state; they
    must be ρ of the batch being trained on, at the current ρ — also after the loop switches to another
    batch (`Solver.refresh`), never the previous batch's."""
    hp = {"lam": 10.0, "anneal_steps": 10.0}
    solver = minimax(MLP(), penalty="tv_l2") if name == "zin" else tiva(MLP())
    assert solver.refresh is not None
    other, _ = logit_z(1, n_train=300, n_test=8)  # rows reversed: logit_z's z is the same for every seed
    other = Batch(*(jnp.asarray(a[::-1]) for a in (other.x, other.y, other.envs, other.z)))
    run = jax.jit(jaxirm.run, static_argnums=(0, 3))
    state = solver.init(jax.random.key(2), data, hp)
    for batch, steps in ((data, 25), (other, 5)):  # the second run is all past the warm-up
        state, _ = run(solver, state, batch, steps)
        aux = state.aux
        zs = (np.asarray(batch.z, np.float64) - np.asarray(aux["z_mean"])) / np.asarray(aux["z_std"])
        rho = state.dual_params["rho"]
        if name == "tiva":  # ρ reads (1 − g) ⊙ [x, z̃] with the noise-free gates g = clip(μ + ½, 0, 1)
            gate = np.clip(np.asarray(state.dual_params["selector"]["mu"], np.float64) + 0.5, 0.0, 1.0)
            zs = (1.0 - gate) * np.concatenate([np.asarray(batch.x, np.float64), zs], axis=1)
        want, tol = _rho_envs(rho, zs)
        assert_within(np.asarray(aux["envs"]).T, want, tol, f"{name}: kept environments")
