"""LfF and TIVA: their formulas against NumPy transcriptions, fit = sweep, z in TIVA's inference, validation.

The references are written out here from the papers' equations (LfF's GCE, EMA, class-wise normalised
relative difficulty; TIVA's gates and ρ on the complementary attributes), never taken from the solver.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tolerance import f32_tol

import jaxirm
from jaxirm.datasets.synthetic import logit_z
from jaxirm.losses import softmax_cross_entropy, squared_error
from jaxirm.models import MLP, EnvInference
from jaxirm.solvers import Batch, lff, tiva
from jaxirm.solvers._lff import relative_difficulty
from jaxirm.solvers._tiva import stochastic_gate


@pytest.fixture(scope="module")
def batch():
    train, _ = logit_z(0, n_train=300, n_test=8)
    return Batch(jnp.asarray(train.x), jnp.asarray(train.y), jnp.asarray(train.envs), jnp.asarray(train.z))


@pytest.fixture(scope="module")
def data():
    train, test = logit_z(1, n_train=400, n_test=400)
    as_batch = lambda d: Batch(*(jnp.asarray(a) for a in (d.x, d.y, d.envs, d.z)))  # noqa: E731
    return as_batch(train), as_batch(test)


def _multiclass(batch):
    """A 3-class problem on the simulation's features: class = how many of two feature means are > 0."""
    x = np.asarray(batch.x)
    y = (x[:, :5].mean(axis=1) > 0).astype(np.int32) + (x[:, 5:].mean(axis=1) > 0).astype(np.int32)
    return Batch(batch.x, jnp.asarray(y), batch.envs, batch.z)


# ----------------------------------------------------------------------------------------------------------
# NumPy transcriptions of LfF (Nam et al. 2020, arXiv:2007.02561).


def _np_probs(logits, y, multiclass):
    """p(y|x) and the cross-entropy, in float64."""
    f = np.asarray(logits, np.float64)
    if multiclass:
        p = np.exp(f - f.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p, -np.log(p[np.arange(len(y)), y])
    s = 1.0 / (1.0 + np.exp(-f))
    py = np.where(y > 0.5, s, 1.0 - s)
    return s, -np.log(py)


def _np_weights(ema_b, ema_d, y, num_classes):
    """W_i = L̃_B / (L̃_B + L̃_D + 1e-8), each EMA divided by its maximum over the examples of y_i's class."""
    cls = (y > 0.5).astype(int) if num_classes == 2 else y.astype(int)
    b, d = ema_b.copy(), ema_d.copy()
    for c in range(num_classes):
        m = cls == c
        if m.any():
            b[m] /= ema_b[m].max()
            d[m] /= ema_d[m].max()
    return b / (b + d + 1e-8)


def _linear(params):
    dense = params["params"]["Dense_0"]
    return np.asarray(dense["kernel"], np.float64), np.asarray(dense["bias"], np.float64)


def _np_logits(params, x):
    w, b = _linear(params)
    out = np.asarray(x, np.float64) @ w + b
    return out[:, 0] if out.shape[1] == 1 else out


def _np_sgd_step(params, x, y, weights, lr, multiclass):
    """One SGD step on mean_i weights_i · ℓ_i: the gradient of a linear model, by hand."""
    w, b = _linear(params)
    x = np.asarray(x, np.float64)
    f = _np_logits(params, x)
    p, _ = _np_probs(f, y, multiclass)
    if multiclass:
        resid = p - np.eye(p.shape[1])[y]
    else:
        resid = (p - y)[:, None]
    resid = resid * weights[:, None] / len(y)
    return w - lr * (x.T @ resid), b - lr * resid.sum(axis=0)


@pytest.mark.parametrize("multiclass", [False, True], ids=["binary", "multiclass"])
def test_lff_weights_and_updates_equal_a_numpy_transcription(batch, multiclass):
    lr, q, gamma = 0.1, 0.7, 0.6
    if multiclass:
        batch = _multiclass(batch)
        solver = lff(
            MLP(out_dim=3), loss=softmax_cross_entropy, optimizer=optax.sgd(lr), l2=0.0, q=q, ema=gamma
        )
        num_classes = 3
    else:
        solver = lff(MLP(), optimizer=optax.sgd(lr), l2=0.0, q=q, ema=gamma)
        num_classes = 2
    y = np.asarray(batch.y)
    state0 = solver.init(jax.random.key(0), batch)
    step = jax.jit(solver.step)
    state1, _ = step(state0, batch)
    state2, metrics2 = step(state1, batch)

    # Step 1: the EMAs start at the first losses.
    _, ce_b0 = _np_probs(_np_logits(state0.dual_params["bias"], batch.x), y, multiclass)
    _, ce_d0 = _np_probs(_np_logits(state0.params, batch.x), y, multiclass)
    # float32 cross-entropy of a d = 10 linear logit: ~16 rounded operations, scale 1 + |CE|
    tol = f32_tol(16, 1.0 + ce_b0.max())
    np.testing.assert_allclose(state1.aux["ema_b"], ce_b0, rtol=0, atol=tol)
    np.testing.assert_allclose(state1.aux["ema_d"], ce_d0, rtol=0, atol=tol)

    # Step 2: EMA with decay γ, class-normalised relative difficulty, then one SGD step of each model.
    p_b1, ce_b1 = _np_probs(_np_logits(state1.dual_params["bias"], batch.x), y, multiclass)
    _, ce_d1 = _np_probs(_np_logits(state1.params, batch.x), y, multiclass)
    ema_b = gamma * np.asarray(state1.aux["ema_b"], np.float64) + (1 - gamma) * ce_b1
    ema_d = gamma * np.asarray(state1.aux["ema_d"], np.float64) + (1 - gamma) * ce_d1
    np.testing.assert_allclose(state2.aux["ema_b"], ema_b, rtol=0, atol=tol)
    np.testing.assert_allclose(state2.aux["ema_d"], ema_d, rtol=0, atol=tol)
    weights = _np_weights(ema_b, ema_d, y, num_classes)
    assert 0.0 < weights.min() and weights.max() < 1.0
    # the solver's own weights, from its EMAs
    cls = jnp.asarray((y > 0.5).astype(np.int32) if not multiclass else y)
    ours = relative_difficulty(state2.aux["ema_b"], state2.aux["ema_d"], cls, num_classes)
    np.testing.assert_allclose(ours, weights, rtol=0, atol=f32_tol(8, 1.0) + 10 * tol)
    np.testing.assert_allclose(
        metrics2["weight"], weights.mean(), rtol=0, atol=f32_tol(len(y), 1.0) + 10 * tol
    )

    # f_D: SGD on mean W·CE (W constant); f_B: SGD on mean GCE, whose gradient is p_y^q ∇CE.
    w_d, b_d = _np_sgd_step(state1.params, batch.x, y, weights, lr, multiclass)
    py = p_b1[np.arange(len(y)), y] if multiclass else np.where(y > 0.5, p_b1, 1 - p_b1)
    w_b, b_b = _np_sgd_step(state1.dual_params["bias"], batch.x, y, py**q, lr, multiclass)
    # parameters of size ~1 moved by lr x a mean over n = 300 examples of d = 10 products
    ptol = f32_tol(len(y) + 16, 1.0)
    for got, want in ((state2.params, (w_d, b_d)), (state2.dual_params["bias"], (w_b, b_b))):
        np.testing.assert_allclose(_linear(got)[0], want[0], rtol=0, atol=ptol)
        np.testing.assert_allclose(_linear(got)[1], want[1], rtol=0, atol=ptol)


def test_relative_difficulty_guards_a_class_fitted_exactly():
    ema = jnp.array([0.0, 0.0, 1.0, 2.0])
    w = relative_difficulty(ema, ema, jnp.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(w, [0.0, 0.0, 0.5, 0.5], atol=1e-6)


def test_lff_ema_zero_uses_the_current_losses(batch):
    solver = lff(MLP(), optimizer=optax.sgd(0.1), l2=0.0, ema=0.0)
    state1, _ = solver.step(solver.init(jax.random.key(0), batch), batch)
    state2, _ = solver.step(state1, batch)
    y = np.asarray(batch.y)
    # γ = 0: the "averages" of step 2 are the losses at the parameters step 2 starts from
    _, ce_b = _np_probs(_np_logits(state1.dual_params["bias"], batch.x), y, False)
    _, ce_d = _np_probs(_np_logits(state1.params, batch.x), y, False)
    tol = f32_tol(16, 1.0 + ce_b.max())  # as in the transcription test above
    np.testing.assert_allclose(state2.aux["ema_b"], ce_b, rtol=0, atol=tol)
    np.testing.assert_allclose(state2.aux["ema_d"], ce_d, rtol=0, atol=tol)


@pytest.mark.parametrize("multiclass", [False, True], ids=["binary", "multiclass"])
def test_lff_trains_binary_and_multiclass(data, multiclass):
    train, test = data
    if multiclass:
        train, test = _multiclass(train), _multiclass(test)
        solver = lff(MLP(out_dim=3), loss=softmax_cross_entropy, lr=0.05)
    else:
        solver = lff(MLP(), lr=0.05)
    res = jaxirm.fit(solver, jax.random.key(0), train, 40, test=test, eval_every=20, progress=False)
    assert solver.full_batch and not solver.needs_z and not solver.uses_envs
    assert not np.any(res.history["diverged"])
    for key in ("loss", "risk", "bias_loss", "weight"):
        assert np.all(np.isfinite(res.history[key])), key
    assert np.all((res.history["weight"] > 0) & (res.history["weight"] < 1))
    assert res.history["bias_loss"][-1] < res.history["bias_loss"][0]  # the biased model learns
    assert np.all(np.isfinite(res.history["test_mean"]))
    with pytest.raises(ValueError, match="batch_size must be None"):
        jaxirm.fit(solver, jax.random.key(0), train, 4, batch_size=32, progress=False)


# ----------------------------------------------------------------------------------------------------------
# fit and sweep give the same runs.

STEPS = 30
FIT_SWEEP = [
    ("lff", lambda: lff(MLP(), lr=0.05), "q", [0.7, 0.3]),
    ("lff-ema", lambda: lff(MLP(), lr=0.05), "ema", [0.7, 0.0]),
    ("tiva", lambda: tiva(MLP(), lr=0.05, lam=100.0, anneal_steps=10), "lam", [100.0, 10.0]),
    ("tiva-stg_reg", lambda: tiva(MLP(), lr=0.05, lam=100.0, anneal_steps=10), "stg_reg", [1e-3, 1.0]),
]


@pytest.mark.parametrize("name, make, hp, values", FIT_SWEEP, ids=[c[0] for c in FIT_SWEEP])
def test_fit_equals_sweep(data, name, make, hp, values):
    train, test = data
    solver = make()
    swept = jaxirm.sweep(solver, train, STEPS, seeds=[3], grid={hp: values}, test=test, eval_every=10)
    assert swept.configs == [{"seed": 3, hp: v} for v in values]
    for index, value in enumerate(values):
        one = jaxirm.fit(
            solver,
            jax.random.key(3),
            train,
            STEPS,
            hparams={hp: value},
            test=test,
            eval_every=10,
            progress=False,
        )
        # 30 steps of a batched versus an unbatched program: round-off grows with the steps, so losses are
        # compared at 2e-4 relative and accuracies to one flipped prediction of 400 (as tests/test_loops.py).
        for key, arr in one.history.items():
            atol = 5e-3 if key.startswith("test") else 2e-4
            np.testing.assert_allclose(arr, swept.history[key][index], rtol=2e-4, atol=atol, err_msg=key)
        member = jax.tree.map(lambda a, i=index: np.asarray(a)[i], swept.state.params)
        for a, b in zip(jax.tree.leaves(one.state.params), jax.tree.leaves(member), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    # the grid really changes the runs
    assert np.abs(swept.history["loss"][0] - swept.history["loss"][1]).max() > 1e-6


# ----------------------------------------------------------------------------------------------------------
# TIVA (Tan, Lin et al. 2023).


def _np_tiva_envs(state, batch, use_z=True, sigma=1.0):
    """ρ((1 − g) ⊙ a) with the test-time gates g = clip(μ + ½, 0, 1), a = [x, standardised z]."""
    x = np.asarray(batch.x, np.float64)
    if use_z:
        z = (np.asarray(batch.z, np.float64) - np.asarray(state.aux["z_mean"])) / np.asarray(
            state.aux["z_std"]
        )
        x = np.concatenate([x, z], axis=1)
    gate = np.clip(np.asarray(state.dual_params["selector"]["mu"], np.float64) + 0.5, 0.0, 1.0)
    return EnvInference(num_envs=2).apply(state.dual_params["rho"], jnp.asarray((1 - gate) * x, jnp.float32))


def test_tiva_infers_environments_from_z(batch):
    solver = tiva(MLP(), lr=0.05, anneal_steps=20, stg_reg=0.1)
    assert solver.needs_z and not solver.uses_envs
    state = solver.init(jax.random.key(0), batch)
    # ρ reads the attributes [x, z]: d_x + d_z inputs
    assert (
        state.dual_params["rho"]["params"]["Dense_0"]["kernel"].shape[0]
        == batch.x.shape[1] + batch.z.shape[1]
    )
    state, _ = jaxirm.run(solver, state, batch, 20)
    envs = _np_tiva_envs(state, batch)
    shuffled = batch._replace(z=batch.z[::-1])
    assert np.abs(np.asarray(envs) - np.asarray(_np_tiva_envs(state, shuffled))).max() > 1e-3
    # after the warm-up the penalty is computed on exactly these environments (empirical measure, IRMv1)
    _, metrics = solver.step(state, batch)
    logits = np.asarray(solver.predict(state, batch.x), np.float64)
    y = np.asarray(batch.y, np.float64)
    s = 1 / (1 + np.exp(-logits))
    q = np.asarray(envs, np.float64)
    grads = (q * ((s - y) * logits)[:, None]).sum(0) / q.sum(0)  # d/dw of each environment's risk at w = 1
    mu = q.mean(0)
    want = (mu * grads**2).sum()
    np.testing.assert_allclose(metrics["penalty"], want, rtol=1e-3, atol=f32_tol(len(y), 1.0))
    with pytest.raises(ValueError, match="z is required"):
        jaxirm.fit(solver, jax.random.key(0), batch._replace(z=None), 2, progress=False)


def test_tiva_without_z_ignores_it(batch):
    solver = tiva(MLP(), lr=0.05, anneal_steps=3, use_z=False)
    assert not solver.needs_z
    run = lambda b: jaxirm.fit(solver, jax.random.key(0), b, 6, eval_every=3, progress=False)  # noqa: E731
    with_z, without = run(batch), run(batch._replace(z=None))
    for a, b in zip(jax.tree.leaves(with_z.state.params), jax.tree.leaves(without.state.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert without.state.dual_params["rho"]["params"]["Dense_0"]["kernel"].shape[0] == batch.x.shape[1]


def test_tiva_selector_and_rho_learn_only_during_the_warm_up(batch):
    warm = 4
    solver = tiva(MLP(), lr=0.05, lam=100.0, anneal_steps=warm)
    state = solver.init(jax.random.key(1), batch)
    states = []
    for _ in range(8):
        state, metrics = solver.step(state, batch)
        states.append(state)
        np.testing.assert_allclose(metrics["lam"], 0.0 if len(states) <= warm else 100.0)
    moved = [
        max(
            np.abs(np.asarray(a) - np.asarray(b)).max()
            for a, b in zip(jax.tree.leaves(s0), jax.tree.leaves(s1), strict=True)
        )
        for s0, s1 in zip(
            [solver.init(jax.random.key(1), batch).dual_params] + [s.dual_params for s in states[:-1]],
            [s.dual_params for s in states],
            strict=True,
        )
    ]
    assert all(m > 0 for m in moved[:warm]) and all(m == 0 for m in moved[warm:])


def test_stochastic_gate():
    mu = jnp.array([-1.0, 0.0, 0.2, 1.0])
    np.testing.assert_allclose(stochastic_gate(mu, 0.0, 1.0), [0.0, 0.5, 0.7, 1.0])
    np.testing.assert_allclose(
        stochastic_gate(mu, jnp.array([0.0, 1.0, -1.0, 0.0]), 0.5), [0.0, 1.0, 0.2, 1.0]
    )


def test_tiva_regression_and_multiclass_run(data):
    train, _ = data
    reg = train._replace(y=jnp.asarray(np.asarray(train.x)[:, 0] + 0.1 * np.asarray(train.z)[:, 0] / 400))
    for solver, b in (
        (tiva(MLP(), loss=squared_error, num_envs=3, lr=0.01, anneal_steps=3), reg),
        (tiva(MLP(out_dim=3), loss=softmax_cross_entropy, lr=0.01, anneal_steps=3), _multiclass(train)),
    ):
        res = jaxirm.fit(solver, jax.random.key(0), b, 8, eval_every=4, progress=False)
        assert not np.any(res.history["diverged"])
        assert np.all(np.isfinite(res.history["penalty"]))


# ----------------------------------------------------------------------------------------------------------
# Argument validation.

BAD = [
    ("lff-regression", lambda: lff(MLP(), loss=squared_error), ValueError, "class probabilities"),
    ("lff-user-loss", lambda: lff(MLP(), loss=lambda f, y: (f - y) ** 2), ValueError, "loss must be"),
    ("lff-q-0", lambda: lff(MLP(), q=0.0), ValueError, r"q must lie in \(0, 1\]"),
    ("lff-q-big", lambda: lff(MLP(), q=1.5), ValueError, r"q must lie in \(0, 1\]"),
    ("lff-q-nan", lambda: lff(MLP(), q=float("nan")), ValueError, "q must be a finite"),
    ("lff-ema-1", lambda: lff(MLP(), ema=1.0), ValueError, r"ema must lie in \[0, 1\)"),
    ("lff-ema-neg", lambda: lff(MLP(), ema=-0.1), ValueError, r"ema must lie in \[0, 1\)"),
    ("lff-ema-str", lambda: lff(MLP(), ema="0.7"), TypeError, "ema must be a number"),
    ("lff-class-norm", lambda: lff(MLP(), class_norm=1), TypeError, "class_norm must be a bool"),
    ("lff-lr-0", lambda: lff(MLP(), lr=0.0), ValueError, "lr must be > 0"),
    ("lff-model", lambda: lff("mlp"), TypeError, "model must be"),
    ("tiva-penalty", lambda: tiva(MLP(), penalty="vrex"), ValueError, "penalty must be one of"),
    ("tiva-measure", lambda: tiva(MLP(), measure="x"), ValueError, "measure must be one of"),
    ("tiva-envs", lambda: tiva(MLP(), num_envs=1), ValueError, "num_envs must be >= 2"),
    ("tiva-sigma", lambda: tiva(MLP(), gate_sigma=0.0), ValueError, "gate_sigma must be > 0"),
    ("tiva-use-z", lambda: tiva(MLP(), use_z="yes"), TypeError, "use_z must be a bool"),
    ("tiva-hidden", lambda: tiva(MLP(), infer_hidden=0), ValueError, "infer_hidden must be"),
    ("tiva-stg-reg", lambda: tiva(MLP(), stg_reg=-1.0), ValueError, "stg_reg must be >= 0"),
    ("tiva-lam", lambda: tiva(MLP(), lam=float("inf")), ValueError, "lam must be a finite"),
    ("tiva-optimizer", lambda: tiva(MLP(), infer_optimizer="adam"), TypeError, "infer_optimizer must be"),
]


@pytest.mark.parametrize("name, make, err, match", BAD, ids=[b[0] for b in BAD])
def test_factory_arguments_are_checked(name, make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize(
    "make, hparams, match",
    [
        (lambda: lff(MLP()), {"q": 2.0}, r"hparams\['q'\] must lie in \(0, 1\]"),
        (lambda: lff(MLP()), {"ema": 1.0}, r"hparams\['ema'\] must lie in \[0, 1\)"),
        (lambda: lff(MLP()), {"lam": 1.0}, "unknown name 'lam'"),
        (lambda: tiva(MLP()), {"q": 0.5}, "unknown name 'q'"),
        (lambda: tiva(MLP()), {"stg_reg": float("nan")}, "must be finite"),
    ],
)
def test_init_hparams_are_checked(batch, make, hparams, match):
    with pytest.raises(ValueError, match=match):
        make().init(jax.random.key(0), batch, hparams)


def test_defaults_are_sweepable_names():
    assert set(lff(MLP()).defaults) == {"lr", "l2", "q", "ema"}
    assert set(tiva(MLP()).defaults) == {"lr", "l2", "lam", "anneal_steps", "stg_reg"}
    # a user's optimizer without inject_hyperparams: lr is not a sweepable name
    assert "lr" not in lff(MLP(), optimizer=optax.sgd(0.1)).defaults


# ----------------------------------------------------------------------------------------------------------
# The paper tables' rows.

TABLE_ROWS = [
    # experiment, {method: paper (mean, worst) or None}, methods that must be absent
    ("simulation", {"LfF": (0.7240, 0.6965), "TIVA": (0.8274, 0.8139)}, ()),
    ("adult", {"LfF": (0.7785, 0.7545), "TIVA": (0.8226, 0.8085)}, ()),
    ("celeba", {"LfF": (0.6092, 0.5983), "TIVA": (0.7695, 0.7283)}, ()),
    ("house-kc", {"TIVA": (0.3869, 0.5519)}, ("LfF",)),  # paper: LfF unstable on house price
    ("house", {"TIVA": None}, ("LfF",)),  # Ames: no paper column at all
]


@pytest.mark.parametrize("name, rows, absent", TABLE_ROWS, ids=[r[0] for r in TABLE_ROWS])
def test_paper_tables_have_lff_and_tiva_rows(name, rows, absent):
    from jaxirm import experiments

    exp = experiments.get(name)
    names = [m.name for m in exp.methods]
    for method, paper in rows.items():
        entry = exp.method(method)
        solver = entry.build()
        assert solver.name == method
        assert set(entry.hparams) <= set(solver.defaults)
        if paper is None:
            assert entry.paper is None
        else:
            assert (entry.paper.mean, entry.paper.worst) == paper
        assert any(method in line for line in exp.notes)
    for method in absent:
        assert method not in names
