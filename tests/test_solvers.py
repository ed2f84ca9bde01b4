"""Solvers: every game under jit and vmap, the ρ ascent, λ_Ψ ≥ 0, the Gauss–Seidel primal-dual order, EIIL.

The reference values are written out by hand here (dummy-scale derivatives of BCE, the environment measures of
DESIGN.md, the OOD-TV objective g(Ψ, Φ) of eq. 13), never taken from the solver under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tolerance import f32_tol
from _xla import FAST

import jaxirm
from jaxirm.datasets.synthetic import logit_z
from jaxirm.models import MLP, EnvInference, LambdaNet
from jaxirm.solvers import Batch, eiil, erm, irm, minimax, ood_tv

MODEL = MLP(hidden=())
NUM_STEPS = 6


def _fast_jit(f):
    return jax.jit(f, compiler_options=FAST)


@pytest.fixture(scope="module")
def batch():
    train, _ = logit_z(0, n_train=400, n_test=8)  # not separable: ERM has a finite optimum
    return Batch(jnp.asarray(train.x), jnp.asarray(train.y), jnp.asarray(train.envs), jnp.asarray(train.z))


# ----------------------------------------------------------------------------------------------------------
# Independent references.


def _bce(f, y):
    return jnp.maximum(f, 0.0) - f * y + jnp.log1p(jnp.exp(-jnp.abs(f)))


def _scale_derivative(f, y):
    """d/ds BCE(s·f, y) at s = 1, by hand: (σ(f) − y)·f."""
    return (jax.nn.sigmoid(f) - y) * f


def _standardised_z(z):
    return (z - jnp.mean(z, axis=0)) / (jnp.std(z, axis=0) + 1e-8)


def _weights(batch, rho_params):
    """[n, E] environment weights: one-hot of the labels, or ρ(standardised z)."""
    if rho_params is None:
        return jax.nn.one_hot(batch.envs, 2)
    return EnvInference(num_envs=2, hidden=16).apply(rho_params, _standardised_z(batch.z))


def _penalty(kind, measure, f, y, weights):
    """TV penalties of DESIGN.md: μ-weighted |g_e| squared (ℓ1) or μ-weighted g_e² (ℓ2)."""
    d = _scale_derivative(f, y)
    mass = jnp.sum(weights, axis=0)
    g = (weights.T @ d) / mass
    mu = jnp.full(2, 0.5) if measure == "uniform" else mass / jnp.sum(mass)
    return jnp.sum(mu * jnp.abs(g)) ** 2 if kind == "tv_l1" else jnp.sum(mu * g**2)


def _ood_objective(phi, psi, rho, batch, *, penalty, lam, l2):
    """OOD-TV eq. 13/14: risk + l2·Σθ² + lam·λ_Ψ(vec Φ)·max(0, penalty) (no 1 + λ rescaling)."""
    f = MODEL.apply(phi, batch.x)
    losses = _bce(f, batch.y)
    weights = _weights(batch, rho)
    if rho is None:  # known environments, uniform measure
        risk = 0.5 * jnp.sum((weights.T @ losses) / jnp.sum(weights, axis=0))
        measure = "uniform"
    else:  # minimax: plain mean risk, ρ-induced measure
        risk = jnp.mean(losses)
        measure = "empirical"
    vec = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(phi)])
    lam_psi = LambdaNet(hidden=16).apply(psi, vec)
    reg = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(phi))
    pen = _penalty(penalty, measure, f, batch.y, weights)
    return risk + l2 * reg + lam * lam_psi * jnp.maximum(pen, 0.0)


def _penalty_tol(value, f, y, weights, upstream=0):
    """Float32 bound (tests/_tolerance.py) between two computations of a TV penalty of weights ``[n, 2]``:
    each g_e = Σ w d / Σ w is within (2n + 7 + upstream)·eps32·max|d| (``upstream``: roundings before the
    weights, e.g. standardising z and ρ's layers), so the penalty within 2·max|g| times that, plus
    2n·eps32 relative for the measure and 4 roundings of its own."""
    d = np.asarray(_scale_derivative(f, y), np.float64)
    w = np.asarray(weights, np.float64)
    g = (w.T @ d) / w.sum(0)
    n = d.shape[0]
    return 2 * np.abs(g).max() * f32_tol(2 * n + 7 + upstream, np.abs(d).max()) + f32_tol(2 * n + 4, value)


def _assert_tree_close(a, b, rtol=1e-4, atol=1e-6):
    def close(u, v):
        np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64), rtol=rtol, atol=atol)

    jax.tree.map(close, a, b)


def _max_abs_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(*map(jax.tree.leaves, (a, b)), strict=True)
    )


# ----------------------------------------------------------------------------------------------------------
# 2. Every solver runs under jit and vmap; vmap over (seed, λ) pairs equals running each pair on its own.

# ρ takes plain gradient steps here. Minimax-TV-ℓ1's penalty (|A| + |B|)², A = Σ q_i d_i, B = Σ (1 − q_i) d_i,
# is flat in ρ wherever A and B share a sign, so its ρ-gradient is round-off there, and Adam (the default)
# would turn that round-off into lr-sized steps that differ between two correct programs.
RHO = {"infer_optimizer": optax.sgd(0.1)}

WARMUP = 2
COMMON = {"lr": 0.05, "anneal_steps": WARMUP}

SOLVERS = [
    ("erm", lambda: erm(MODEL, lr=0.05)),
    ("irm-tv_l2", lambda: irm(MODEL, penalty="tv_l2", **COMMON)),
    ("irm-tv_l1", lambda: irm(MODEL, penalty="tv_l1", **COMMON)),
    ("irm-vrex", lambda: irm(MODEL, penalty="vrex", **COMMON)),
    ("irm-tv_l1-split", lambda: irm(MODEL, penalty="tv_l1", split=True, **COMMON)),
    ("irm-tv_l2-split", lambda: irm(MODEL, penalty="tv_l2", split=True, **COMMON)),
    ("minimax-tv_l2", lambda: minimax(MODEL, penalty="tv_l2", **COMMON, **RHO)),
    ("minimax-tv_l1", lambda: minimax(MODEL, penalty="tv_l1", **COMMON, **RHO)),
    ("ood_tv-irm-tv_l1", lambda: ood_tv(MODEL, base="irm", penalty="tv_l1", **COMMON)),
    ("ood_tv-irm-tv_l2", lambda: ood_tv(MODEL, base="irm", penalty="tv_l2", **COMMON)),
    ("ood_tv-minimax-tv_l1", lambda: ood_tv(MODEL, base="minimax", penalty="tv_l1", **COMMON, **RHO)),
    ("ood_tv-minimax-tv_l2", lambda: ood_tv(MODEL, base="minimax", penalty="tv_l2", **COMMON, **RHO)),
    ("eiil", lambda: eiil(MODEL, lr=0.05, reference_steps=2, infer_steps=2, anneal_steps=1)),
]


def _moved(before, trajectory):
    """[T] bools: whether step t changed the pytree (trajectory leaves carry a leading step axis)."""
    first = jax.tree.map(lambda a: np.asarray(a)[None], before)
    full = jax.tree.map(lambda a, b: np.concatenate([a, np.asarray(b)]), first, trajectory)
    steps = [
        np.abs(np.diff(leaf.reshape(leaf.shape[0], -1), axis=0)).max(axis=1) for leaf in jax.tree.leaves(full)
    ]
    return np.max(np.stack(steps), axis=0) > 0


@pytest.mark.parametrize("name, make", SOLVERS, ids=[s[0] for s in SOLVERS])
def test_jit_and_vmap_match_separate_runs(batch, name, make):
    solver = make()
    hp_name = "lam" if "lam" in solver.defaults else "l2"
    values = jnp.array([10.0, 1000.0]) if hp_name == "lam" else jnp.array([1e-3, 1e-1])
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])

    def run(key, value, batch):
        state = solver.init(key, batch, {hp_name: value})

        def body(s, _):
            s, metrics = solver.step(s, batch)
            return s, (metrics, s.dual_params)

        return state.dual_params, jax.lax.scan(body, state, None, length=NUM_STEPS)

    def both(keys, values, batch):
        # vmap over the pairs, and each pair on its own (lax.map runs the unbatched program per pair)
        vmapped = jax.vmap(run, in_axes=(0, 0, None))(keys, values, batch)
        return vmapped, jax.lax.map(lambda kv: run(*kv, batch), (keys, values))

    vmapped, separate = jax.device_get(_fast_jit(both)(keys, values, batch))
    # atol 1e-5: ρ of OOD-TV-Minimax-ℓ1 ascends from the first step on a penalty that is nearly flat in ρ,
    # so its updates are round-off-sized (~1e-7) and differ at that level between the two programs.
    _assert_tree_close(vmapped, separate, atol=1e-5)
    dual0, (state, (metrics, duals)) = vmapped
    np.testing.assert_array_equal(state.step, [NUM_STEPS, NUM_STEPS])
    np.testing.assert_allclose(state.hparams[hp_name], values)
    assert not np.any(metrics["diverged"])
    for key, value in metrics.items():
        assert np.all(np.isfinite(value)), key
    # The two members really differ (vmap did not broadcast one run).
    member = lambda i: jax.tree.map(lambda a: a[i], state.params)  # noqa: E731
    assert _max_abs_diff(member(0), member(1)) > 1e-4
    warm = np.arange(NUM_STEPS) < WARMUP
    for i in range(2):
        dual0_i, duals_i = jax.tree.map(lambda a, i=i: a[i], (dual0, duals))
        if "rho" in duals_i and name.startswith("minimax"):  # ZIN: ρ ascends only during the warm-up
            moved = _moved(dual0_i["rho"], duals_i["rho"])
            assert not np.any(moved[~warm])
            if "tv_l2" in name:
                assert np.all(moved[warm])
        if "rho" in duals_i and name.startswith("ood_tv") and "tv_l2" in name:
            # rho_updates="always": ρ ascends λ_Ψ·penalty at every step, the warm-up included (the warm-up
            # gate multiplies the primal objective only)
            assert np.all(_moved(dual0_i["rho"], duals_i["rho"]))
        if "psi" in duals_i:  # Ψ ascends only once the penalty is on, then at every step
            np.testing.assert_array_equal(_moved(dual0_i["psi"], duals_i["psi"]), ~warm)
    if name.startswith("ood_tv"):
        # λ_Ψ ≥ 0: the effective weight is 0 during the warm-up and lam·λ_Ψ(vec Φ) > 0 after.
        lam = metrics["lam"]
        assert np.all(lam >= 0.0)
        np.testing.assert_array_equal(lam[:, warm], 0.0)
        assert np.all(lam[:, ~warm] > 0.0)


# ----------------------------------------------------------------------------------------------------------
# 3a. The minimax ρ step ascends the penalty, only when its schedule says so.

# (penalty, rho_updates, anneal_steps, whether the first step updates ρ); the default schedules are also
# pinned step by step in test_jit_and_vmap_match_separate_runs.
RHO_CASES = [
    ("tv_l1", "always", 0, True),
    ("tv_l2", "warmup", 5, True),
    ("tv_l2", "after_warmup", 5, False),
]


def _erm_fit(params, batch, steps=200):
    """Φ near the ERM optimum, by hand (Adam on the mean BCE)."""
    opt = optax.adam(0.05)

    def body(carry, _):
        p, o = carry
        grads = jax.grad(lambda q: jnp.mean(_bce(MODEL.apply(q, batch.x), batch.y)))(p)
        updates, o = opt.update(grads, o)
        return (optax.apply_updates(p, updates), o), None

    return jax.lax.scan(body, (params, opt.init(params)), None, length=steps)[0][0]


@pytest.mark.parametrize("penalty, rho_updates, anneal_steps, updates", RHO_CASES)
def test_minimax_rho_step_increases_penalty(batch, penalty, rho_updates, anneal_steps, updates):
    # Φ starts near the ERM optimum, where Σ_i d_i ≈ 0, so the two inferred environments' gradients
    # A = Σ q_i d_i and B = Σ (1 − q_i) d_i have opposite signs and TV-ℓ1 depends on ρ (as in ZIN's warm-up).
    solver = minimax(
        MODEL, penalty=penalty, lr=1e-3, lam=10.0, anneal_steps=anneal_steps, rho_updates=rho_updates
    )

    def run(key, batch):
        def pen(phi, rho):
            return _penalty(penalty, "empirical", MODEL.apply(phi, batch.x), batch.y, _weights(batch, rho))

        state = solver.init(key, batch)
        state = state._replace(params=_erm_fit(state.params, batch))
        new, metrics = solver.step(state, batch)
        d = _scale_derivative(MODEL.apply(new.params, batch.x), batch.y)
        env_sums = _weights(batch, state.dual_params["rho"]).T @ d
        values = {
            "before": pen(new.params, state.dual_params["rho"]),
            "after": pen(new.params, new.dual_params["rho"]),
            "at_start": pen(state.params, state.dual_params["rho"]),
        }
        return state, new, metrics, values, env_sums

    state, new, metrics, values, env_sums = jax.device_get(_fast_jit(run)(jax.random.key(0), batch))
    assert env_sums[0] * env_sums[1] < 0
    # the reported penalty is the one at (Φ_k, ρ_k), by the independent formula; float32 bound with the
    # standardisation of z (2 sums of n terms) and ρ's two layers (≤ 20 terms) upstream of the weights
    n = batch.x.shape[0]
    rho = state.dual_params["rho"]
    f_start, f_new = MODEL.apply(state.params, batch.x), MODEL.apply(new.params, batch.x)
    tol = _penalty_tol(values["at_start"], f_start, batch.y, _weights(batch, rho), upstream=2 * n + 20)
    np.testing.assert_allclose(metrics["penalty"], values["at_start"], rtol=0, atol=tol)
    assert values["before"] > 0.0
    if updates:
        assert _max_abs_diff(new.dual_params["rho"], state.dual_params["rho"]) > 1e-5
        assert values["after"] > values["before"] * (1 + 1e-3)
    else:
        _assert_tree_close(new.dual_params["rho"], state.dual_params["rho"], rtol=0, atol=0)
        tol = _penalty_tol(values["before"], f_new, batch.y, _weights(batch, rho))  # same ρ: float32 only
        np.testing.assert_allclose(values["after"], values["before"], rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------------------------
# 3b. Primal-dual order (OOD-TV eqs. 17–18): Φ descends at the old dual, the dual ascends at the NEW Φ.

ETA_PHI, ETA_PSI, ETA_RHO = 0.2, 0.5, 0.5


@pytest.mark.parametrize("base, penalty", [("irm", "tv_l1"), ("minimax", "tv_l2")])
def test_dual_step_sees_new_phi(batch, base, penalty):
    lam, l2 = 3.0, 1e-3
    phi_opt, psi_opt, rho_opt = optax.sgd(ETA_PHI), optax.sgd(ETA_PSI), optax.sgd(ETA_RHO)
    solver = ood_tv(
        MODEL,
        base=base,
        penalty=penalty,
        optimizer=phi_opt,
        lam_optimizer=psi_opt,
        infer_optimizer=rho_opt,
        lam=lam,
        l2=l2,
        anneal_steps=0,
    )

    def run(key, batch):
        def objective(phi, psi, rho):
            return _ood_objective(phi, psi, rho, batch, penalty=penalty, lam=lam, l2=l2)

        state = solver.init(key, batch)
        new, _ = solver.step(state, batch)
        phi0, psi0 = state.params, state.dual_params["psi"]
        rho0 = state.dual_params.get("rho")
        phi1 = new.params  # Φ_{k+1} as returned by the solver
        expected = {
            "phi": optax.apply_updates(
                phi0, phi_opt.update(jax.grad(objective)(phi0, psi0, rho0), state.opt_state)[0]
            )
        }
        for order, phi in (("gauss_seidel", phi1), ("jacobi", phi0)):
            # the solver's optimizers, on the negated gradient (ascent), from the old dual optimizer states
            grads = jax.grad(objective, argnums=(1, 2))(phi, psi0, rho0)
            neg = jax.tree.map(jnp.negative, grads)
            upd = psi_opt.update(neg[0], state.dual_opt_state["psi"])[0]
            expected[order] = {"psi": optax.apply_updates(psi0, upd)}
            if rho0 is not None:
                upd = rho_opt.update(neg[1], state.dual_opt_state["rho"])[0]
                expected[order]["rho"] = optax.apply_updates(rho0, upd)
        return state, new, expected

    state, new, expected = jax.device_get(_fast_jit(run)(jax.random.key(0), batch))
    # Φ_{k+1} = Φ_k − η ∂_Φ g(Ψ_k, Φ_k), with ∇_Φ λ_Ψ(vec Φ) included
    _assert_tree_close(new.params, expected["phi"])
    assert _max_abs_diff(new.params, state.params) > 1e-3
    # (Ψ, ρ)_{k+1} = (Ψ, ρ)_k + η ∇ g(Ψ_k, Φ_{k+1})
    _assert_tree_close(new.dual_params, expected["gauss_seidel"])
    assert _max_abs_diff(new.dual_params, state.dual_params) > 1e-5
    # and not the Jacobi update at the old Φ_k, which is measurably different
    assert _max_abs_diff(expected["jacobi"], expected["gauss_seidel"]) > 1e-4
    assert _max_abs_diff(new.dual_params, expected["jacobi"]) > 1e-4


# ----------------------------------------------------------------------------------------------------------
# 11. EIIL: reference ERM, then ascent of the assignments u, then IRM on the partition u ≤ 0.

REF_STEPS, INFER_STEPS, IRM_STEPS = 3, 12, 4


@pytest.fixture(scope="module")
def eiil_trajectory(batch):
    solver = eiil(
        MODEL,
        lr=0.05,
        lam=10.0,
        anneal_steps=0,
        reference_steps=REF_STEPS,
        infer_steps=INFER_STEPS,
        infer_optimizer=optax.adam(0.05),
    )

    def run(key, batch):
        state = solver.init(key, batch)

        def body(s, _):
            s, metrics = solver.step(s, batch)
            return s, (s.dual_params, s.params, metrics)

        return state, jax.lax.scan(body, state, None, length=REF_STEPS + INFER_STEPS + IRM_STEPS)

    return jax.device_get(_fast_jit(run)(jax.random.key(0), batch))


def test_eiil_phases_at_the_right_steps(eiil_trajectory):
    _, (_, (_, _, metrics)) = eiil_trajectory
    expected = [0] * REF_STEPS + [1] * INFER_STEPS + [2] * IRM_STEPS
    np.testing.assert_array_equal(metrics["phase"], expected)
    assert not np.any(metrics["diverged"])


def test_eiil_assignments_move_only_while_inferring(eiil_trajectory, batch):
    init, (final, (duals, phis, metrics)) = eiil_trajectory
    u = np.concatenate([init.dual_params["u"][None], duals["u"]])  # u after 0, 1, …, T steps
    moved = np.max(np.abs(np.diff(u, axis=0)), axis=1) > 0  # moved[t]: step t changed u
    np.testing.assert_array_equal(moved, [False] * REF_STEPS + [True] * INFER_STEPS + [False] * IRM_STEPS)
    # The reference moves only in phase 0; the final model Φ only in phase 2.
    ref = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(init.dual_params["ref"])])
    refs = np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in jax.tree.leaves(duals["ref"])], axis=1)
    ref_moved = np.max(np.abs(np.diff(np.concatenate([ref[None], refs]), axis=0)), axis=1) > 0
    np.testing.assert_array_equal(ref_moved, [True] * REF_STEPS + [False] * (INFER_STEPS + IRM_STEPS))
    phi = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(init.params)])
    phis = np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in jax.tree.leaves(phis)], axis=1)
    phi_moved = np.max(np.abs(np.diff(np.concatenate([phi[None], phis]), axis=0)), axis=1) > 0
    np.testing.assert_array_equal(phi_moved, [False] * (REF_STEPS + INFER_STEPS) + [True] * IRM_STEPS)


def test_eiil_inference_ascends_the_penalty(eiil_trajectory, batch):
    init, (final, (duals, _, metrics)) = eiil_trajectory
    pen = metrics["penalty"][REF_STEPS : REF_STEPS + INFER_STEPS]
    assert pen[-1] > pen[0] * 1.05
    assert np.mean(np.diff(pen) > 0) >= 0.8  # mostly monotone ascent
    # Independent check of the objective: the frozen reference's IRMv1 penalty over (q, 1 − q), environment
    # losses averaged over all n examples (EIIL as published), is larger at the final u than at the first.
    ref = jax.tree.map(lambda a: a[-1], duals["ref"])
    d = np.asarray(_scale_derivative(MODEL.apply(ref, batch.x), batch.y), np.float64)

    def eiil_penalty(u):
        q = 1.0 / (1.0 + np.exp(-np.asarray(u, np.float64)))
        return np.sum(((q * d).mean()) ** 2 + (((1 - q) * d).mean()) ** 2)

    u_first = duals["u"][REF_STEPS - 1]  # u entering the inference phase
    u_last = duals["u"][REF_STEPS + INFER_STEPS - 1]
    # float32 library against float64 numpy on the same float32 d: Σ_e (m_e/n · g_e)², the bound of
    # _penalty_tol with the weights q = σ(u) (2 roundings upstream)
    q = 1.0 / (1.0 + np.exp(-np.asarray(u_first, np.float64)))
    f_ref = MODEL.apply(ref, batch.x)
    tol = _penalty_tol(pen[0], f_ref, batch.y, np.stack([q, 1 - q], axis=1), upstream=2)
    np.testing.assert_allclose(eiil_penalty(u_first), pen[0], rtol=0, atol=tol)
    assert eiil_penalty(u_last) > eiil_penalty(u_first)
    # Phase 2 penalises the hard partition u ≤ 0 with IRM's TV-ℓ2 penalty (uniform measure).
    labels = (u_last <= 0).astype(np.int32)
    assert 0 < labels.sum() < labels.size
    phi_before = init.params  # Φ is untouched until phase 2
    weights = jax.nn.one_hot(labels, 2)
    f_before = MODEL.apply(phi_before, batch.x)
    expected = _penalty("tv_l2", "uniform", f_before, batch.y, weights)
    tol = _penalty_tol(expected, f_before, batch.y, weights)  # float32 on both sides, see _penalty_tol
    np.testing.assert_allclose(metrics["penalty"][REF_STEPS + INFER_STEPS], expected, rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------------------------
# The penalty weight can come from any optax schedule.


def test_penalty_weight_follows_an_optax_schedule(batch):
    schedule = optax.linear_schedule(0.0, 1.0, transition_steps=4, transition_begin=2)
    solver = irm(MODEL, penalty="tv_l1", lam=100.0, penalty_schedule=schedule, rescale=False)
    state = solver.init(jax.random.key(0), batch)
    lams = jax.jit(jaxirm.run, static_argnums=(0, 3))(solver, state, batch, 8)[1]["lam"]
    expected = [100.0 * float(schedule(k)) for k in range(8)]
    # the float32 schedule (a difference, a quotient, a clip, a sum) times lam: ≤ 5·eps32 relative
    np.testing.assert_allclose(np.asarray(lams), expected, rtol=f32_tol(5))
    assert expected[:3] == [0.0, 0.0, 0.0] and expected[-1] == 100.0


def test_penalty_schedule_must_be_callable():
    with pytest.raises(TypeError, match="penalty_schedule"):
        irm(MODEL, penalty_schedule=3.0)


FACTORIES = {"erm": erm, "irm": irm, "minimax": minimax, "ood_tv": ood_tv, "eiil": eiil}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["lam", "lr", "l2"])
@pytest.mark.parametrize("factory", list(FACTORIES))
def test_factories_reject_non_finite_hyperparameters(factory, name, value):
    """lam = inf would turn the warm-up gate 0·lam into NaN at step 1; nan/inf lr or l2 likewise."""
    if factory == "erm" and name == "lam":
        pytest.skip("erm takes no lam")
    with pytest.raises(ValueError, match=rf"{name} must be a finite number, got -?(nan|inf)"):
        FACTORIES[factory](MODEL, **{name: value})


def test_factories_accept_numpy_scalars():
    solver = irm(MODEL, lam=np.float32(10.0), lr=np.float64(0.01))
    assert solver.defaults["lam"] == 10.0 and solver.defaults["lr"] == pytest.approx(0.01)


def _lam_trajectory(lam_optimizer, steps=2400):
    """A·λ_Ψ(vec Φ) at every step of OOD-TV-IRM-ℓ1 in the simulation's registered setting (seed 0)."""
    from jaxirm.experiments.simulation import SIMULATION_HPARAMS

    train, _ = logit_z(0)
    data = Batch(jnp.asarray(train.x), jnp.asarray(train.y), jnp.asarray(train.envs))
    kwargs = {} if lam_optimizer is None else {"lam_optimizer": lam_optimizer}
    solver = ood_tv(MLP(), base="irm", penalty="tv_l1", lam_hidden=1, **kwargs)
    state = solver.init(jax.random.key(0), data, SIMULATION_HPARAMS)

    lams = jax.jit(jaxirm.run, static_argnums=(0, 3))(solver, state, data, steps)[1]["lam"]
    return np.asarray(lams), int(SIMULATION_HPARAMS["anneal_steps"])


def test_ood_tv_default_dual_step_moves_lambda():
    """OOD-TV Theorem 3's step (lr 1): A·λ_Ψ changes by ≥ 5× within 400 adversarial steps; a 1e-3 scale
    on the same step (the old default) leaves it within 10 % of its initial value."""
    from jaxirm.optim import convergent_sgd

    lam, start = _lam_trajectory(None)
    assert np.all(lam[:start] == 0.0)  # warm-up: the penalty is off
    assert lam[start + 399] / lam[start] >= 5.0
    old, _ = _lam_trajectory(convergent_sgd(1e-3, power=1.0001))
    assert old[start] == pytest.approx(lam[start])  # same Φ and Ψ until the first adversarial step
    assert abs(old[start + 399] / old[start] - 1.0) < 0.1
