"""The TV norm as data: ``penalty="tv"`` with the hyperparameter ``tv_norm`` (1: TV-ℓ1, 2: TV-ℓ2).

Such a solver runs the fixed-norm game of its ``tv_norm``; a sweep over both norms is one program; the
experiments' two norms of a game (IRM and IRM-TV-ℓ1, ZIN and Minimax-TV-ℓ1, the OOD-TV pairs) are one solver
and `reproduce` compiles its program once.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tolerance import f32_tol
from _xla import FAST

import jaxirm
from jaxirm.datasets.synthetic import logit_z
from jaxirm.experiments import get as get_experiment
from jaxirm.experiments._methods import paper_methods
from jaxirm.models import MLP
from jaxirm.solvers import Batch, irm, minimax, ood_tv

MODEL = MLP(hidden=())
NUM_STEPS = 6
COMMON = {"lr": 0.05, "anneal_steps": 2}
RHO = {"infer_optimizer": optax.sgd(0.1)}  # see tests/test_solvers.py: Adam turns ρ's round-off into steps

GAMES = [
    ("irm", lambda **kw: irm(MODEL, **COMMON, **kw)),
    ("irm-split", lambda **kw: irm(MODEL, split=True, **COMMON, **kw)),
    ("minimax", lambda **kw: minimax(MODEL, **COMMON, **RHO, **kw)),
    ("ood_tv-irm", lambda **kw: ood_tv(MODEL, base="irm", **COMMON, **kw)),
    ("ood_tv-minimax", lambda **kw: ood_tv(MODEL, base="minimax", **COMMON, **RHO, **kw)),
]


@pytest.fixture(scope="module")
def batch():
    train, _ = logit_z(0, n_train=400, n_test=8)
    return Batch(jnp.asarray(train.x), jnp.asarray(train.y), jnp.asarray(train.envs), jnp.asarray(train.z))


def _trajectory(solver, batch, hparams):
    def run(batch):
        state = solver.init(jax.random.key(0), batch, hparams)
        return jax.lax.scan(lambda s, _: solver.step(s, batch), state, None, length=NUM_STEPS)

    return jax.device_get(jax.jit(run, compiler_options=FAST)(batch))


@pytest.mark.parametrize("name, make", GAMES, ids=[g[0] for g in GAMES])
@pytest.mark.parametrize("norm", [1, 2])
def test_tv_norm_runs_the_fixed_norm_game(batch, name, make, norm):
    data_norm = make(penalty="tv")
    fixed = make(penalty=f"tv_l{norm}")
    assert data_norm.defaults["tv_norm"] == 1.0 and "tv_norm" not in fixed.defaults
    state, metrics = _trajectory(data_norm, batch, {"lam": 100.0, "tv_norm": float(norm)})
    want_state, want = _trajectory(fixed, batch, {"lam": 100.0})
    # The first step's penalty, at the same initial parameters: the same formula computed by two programs,
    # each g_e a sum over n = 400 examples of terms below 1 in size: within f32_tol(2n + 8) of each other
    # (absolute, g_e ≲ 1), times 2·max|g| ≲ 2 for the square.
    first = metrics["penalty"][0]
    assert abs(first - want["penalty"][0]) <= 2 * f32_tol(2 * 400 + 8)
    if "minimax" not in name:
        # ... and the other norm's is another number: the hyperparameter picks the norm. (ρ starts near an
        # even split, where the two norms nearly agree: (Σμ|g|)² − Σμg² = −μ₁μ₂(|g₁| − |g₂|)².)
        other = _trajectory(data_norm, batch, {"lam": 100.0, "tv_norm": float(3 - norm)})[1]
        assert abs(other["penalty"][0] - first) > 10 * f32_tol(2 * 400 + 8)
    # The whole trajectory: Adam normalises each update, so round-off-sized gradient differences become
    # differences of up to lr·(relative gradient error) per step; 6 steps of lr 0.05 on float32 gradients
    # stay far below 1e-5 where the gradients are not round-off themselves (as in tests/test_solvers.py).
    for key in ("loss", "risk", "penalty", "lam"):
        np.testing.assert_allclose(metrics[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        (state.params, state.dual_params),
        (want_state.params, want_state.dual_params),
    )


@pytest.mark.parametrize("name, make", GAMES, ids=[g[0] for g in GAMES])
def test_tv_norm_is_checked_at_every_boundary(batch, name, make):
    for bad in (1.5, 0, 3):
        with pytest.raises(ValueError, match="tv_norm must be 1 or 2"):
            make(penalty="tv", tv_norm=bad)
    with pytest.raises(TypeError, match="tv_norm"):
        make(penalty="tv", tv_norm="1")
    with pytest.raises(ValueError, match="tv_norm is the norm of penalty='tv'"):
        make(penalty="tv_l2", tv_norm=2)
    assert make(penalty="tv").defaults["tv_norm"] == 1.0
    solver = make(penalty="tv", tv_norm=2)
    assert solver.defaults["tv_norm"] == 2.0
    for bad in (0.0, 3.0, 2.5, float("nan")):
        with pytest.raises(ValueError, match="tv_norm"):
            solver.init(jax.random.key(0), batch, {"tv_norm": bad})
    with pytest.raises(ValueError, match="tv_norm"):
        jaxirm.sweep(solver, batch, 2, seeds=1, grid={"tv_norm": [1.0, 0.0]})
    with pytest.raises(ValueError, match="unknown name 'tv_norm'"):  # a fixed norm has no such knob
        make(penalty="tv_l1").init(jax.random.key(0), batch, {"tv_norm": 1.0})


def test_both_norms_are_one_program(batch):
    # Sweeping one norm, then the other, of the same solver compiles nothing the second time: the norm is
    # data, as `reproduce` relies on for the methods of the papers' tables.
    solver = irm(MODEL, penalty="tv", **COMMON)
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    l1 = jaxirm.sweep(solver, batch, 4, seeds=2, grid={"tv_norm": [1.0]}, eval_every=2)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        l2 = jaxirm.sweep(solver, batch, 4, seeds=2, grid={"tv_norm": [2.0]}, eval_every=2)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    assert not np.allclose(l1.history["penalty"], l2.history["penalty"])
    both = jaxirm.sweep(solver, batch, 4, seeds=2, grid={"tv_norm": [1.0, 2.0]}, eval_every=2)
    assert [c["tv_norm"] for c in both.configs] == [1.0, 2.0, 1.0, 2.0]
    # bound as in test_tv_norm_runs_the_fixed_norm_game (4 steps, one program per grid layout)
    np.testing.assert_allclose(both.history["penalty"][0::2], l1.history["penalty"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both.history["penalty"][1::2], l2.history["penalty"], rtol=1e-4, atol=1e-5)


PAIRS = [
    ("IRM", "IRM-TV-l1"),
    ("ZIN", "Minimax-TV-l1"),
    ("OOD-TV-IRM-l2", "OOD-TV-IRM-l1"),
    ("OOD-TV-Minimax-l2", "OOD-TV-Minimax-l1"),
]


def test_paper_methods_build_one_solver_per_game():
    hparams = {"lr": 0.01, "l2": 0.001, "lam": 10.0, "anneal_steps": 5.0}
    methods = {m.name: m for m in paper_methods(MODEL, hparams, vrex=True)}
    for l2_name, l1_name in PAIRS:
        l2, l1 = methods[l2_name], methods[l1_name]
        assert l2.build is l1.build and l2.build() is l1.build()
        assert (l2.hparams["tv_norm"], l1.hparams["tv_norm"]) == (2.0, 1.0)
        assert {k: v for k, v in l2.hparams.items() if k != "tv_norm"} == hparams
    builds = [methods[a].build for a, _ in PAIRS] + [methods[n].build for n in ("ERM", "VREx", "EIIL")]
    assert len({id(b) for b in builds}) == len(builds)  # one build per game, nothing else shared
    assert "tv_norm" not in methods["VREx"].hparams and "tv_norm" not in methods["ERM"].hparams
    # The registered experiments run the papers' norms.
    for method in get_experiment("simulation").methods:
        if "tv_norm" in method.hparams:
            assert method.hparams["tv_norm"] == (1.0 if method.name.endswith("l1") else 2.0), method.name


def _reproduce(tmp_path, out, *methods):
    env = {**os.environ, "JAXIRM_COMPILE_CACHE": "1", "JAXIRM_CACHE_DIR": str(tmp_path / "xla")}
    # the penalty on after 5 of the 20 steps, so that the two norms train differently
    args = "reproduce simulation --seeds 2 --steps 20 --set anneal_steps=5 --no-plot".split()
    cmd = [sys.executable, "-m", "jaxirm", *args]
    for m in methods:
        cmd += ["--method", m]
    proc = subprocess.run([*cmd, "--out", str(tmp_path / out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / out / "results.jsonl").read_text().splitlines()]
    fields = ("test_mean", "test_worst", "step")
    return {(r["method"], r["seed"], r["selection"]): tuple(r[f] for f in fields) for r in rows}


def test_the_methods_of_a_game_get_one_compiled_program(tmp_path, monkeypatch):
    # reproduce's compile-ahead thread makes the program of IRM's and IRM-TV-ℓ1's sweeps once.
    from jaxirm.experiments import _ahead
    from jaxirm.experiments._plan import plan
    from jaxirm.experiments._run import prepare_method

    made, precompile = [], _ahead.precompile

    def counted(sweep):
        made.append(sweep)
        return precompile(sweep)

    monkeypatch.setattr(_ahead, "precompile", counted)
    run = plan("simulation", out=tmp_path, seeds=2, steps=20, methods=["IRM", "IRM-TV-l1"], plot=False)
    data = run.data()
    ahead = _ahead.CompileAhead(run, store=None)
    for name in ("IRM", "IRM-TV-l1"):
        ahead.submit(name, prepare_method(run, name, data, [0, 1]))
    first, second = (ahead.program(name).program for name in ("IRM", "IRM-TV-l1"))
    assert len(made) == 1 and first is second is not None


def test_reproduce_keeps_one_program_per_game_under_a_key_of_the_game(tmp_path):
    store = tmp_path / "xla" / "jaxirm-programs"
    both = _reproduce(tmp_path, "both", "IRM", "IRM-TV-l1")
    kept = {p.name: p.stat().st_ino for p in store.iterdir()}
    assert len(kept) == 1, kept  # one program for the two methods
    assert {k[0] for k in both} == {"IRM", "IRM-TV-l1"} and len(both) == 2 * 2 * 3
    assert any(both[("IRM", s, "final")] != both[("IRM-TV-l1", s, "final")] for s in (0, 1))
    # Either method alone finds the program under the same key and computes the same rows: the key names the
    # game, not the methods of this run. Without JAX's own cache, a program not found in the store would be
    # compiled and stored anew: the store is left as it was, so it was loaded.
    for path in (tmp_path / "xla").iterdir():
        if path.is_file():
            path.unlink()
    alone = _reproduce(tmp_path, "alone", "IRM-TV-l1")
    assert {p.name: p.stat().st_ino for p in store.iterdir()} == kept
    assert alone == {k: v for k, v in both.items() if k[0] == "IRM-TV-l1"}
