"""Hyperparameter search and model selection, provenance, durable results, locks and checkpoints."""

import json

import jax
import numpy as np
import pytest
from test_experiments import _tiny as _tiny_experiment

import jaxirm
from jaxirm import experiments, provenance, solvers
from jaxirm.cli import main
from jaxirm.datasets import logit_z
from jaxirm.experiments import Experiment, _store
from jaxirm.loops import SweepResult
from jaxirm.models import MLP
from jaxirm.selection import leave_one_env_out, select_config
from jaxirm.solvers import Batch


def _tiny(name="tiny-research", methods=("ERM", "IRM-TV-l1"), space=True) -> Experiment:
    """test_experiments.py's tiny experiment without paper entries, with a search space."""
    search_space = jaxirm.search_space(lam=jaxirm.log_uniform(10, 1e4), lr=jaxirm.log_uniform(1e-3, 0.1))
    return _tiny_experiment(name, methods, paper=False, search_space=search_space if space else None)


# ---------------------------------------------------------------------------------------------------------
# Search spaces


def test_random_search_is_seeded_and_per_name():
    space = jaxirm.search_space(lam=jaxirm.log_uniform(10, 1e4), lr=jaxirm.uniform(0.01, 0.02))
    a = space.sample(5, seed=3)
    assert a == space.sample(5, seed=3) and a != space.sample(5, seed=4)
    assert all(10 <= p["lam"] <= 1e4 and 0.01 <= p["lr"] <= 0.02 for p in a)
    # Adding a name leaves the others' draws unchanged (DomainBed's per-name streams).
    wider = jaxirm.search_space(
        lam=jaxirm.log_uniform(10, 1e4), lr=jaxirm.uniform(0.01, 0.02), l2=jaxirm.choice(0, 1)
    )
    assert [p["lam"] for p in wider.sample(5, seed=3)] == [p["lam"] for p in a]
    assert space.sample(3, seed=0, base={"lam": 2000.0, "lr": 0.02, "l2": 1.0})[0] == {
        "lam": 2000.0,
        "lr": 0.02,
    }
    assert len(space.grid(3)) == 9
    with pytest.raises(ValueError, match="0 < low"):
        jaxirm.log_uniform(0, 1)
    with pytest.raises(TypeError, match="Range"):
        jaxirm.search_space(lam=[1, 2])


def _data(seed=0, n=200):
    train, test = logit_z(seed, n_train=n, n_test=n)
    val, _ = logit_z(seed + 99, n_train=n // 2, n_test=4)
    return (
        Batch(train.x, train.y, train.envs),
        Batch(val.x, val.y, val.envs),
        Batch(test.x, test.y, test.envs),
    )


def test_sweep_over_explicit_configs_matches_the_grid_and_keeps_selected_states():
    solver = solvers.irm(MLP(), penalty="tv_l1")
    batch, val, test = _data()
    points = [{"lam": 10.0, "lr": 0.02}, {"lam": 100.0, "lr": 0.05}]
    res = jaxirm.sweep(
        solver, batch, 40, seeds=2, configs=points, test=test, val=val, eval_every=10, keep_selected=True
    )
    assert [(c["seed"], c["lam"]) for c in res.configs] == [(0, 10.0), (0, 100.0), (1, 10.0), (1, 100.0)]
    one = jaxirm.sweep(
        solver, batch, 40, seeds=[1], grid={"lam": [100.0], "lr": [0.05]}, test=test, val=val, eval_every=10
    )
    np.testing.assert_allclose(res.history["test_mean"][3], one.history["test_mean"][0], atol=1e-6)
    assert "val" in res.selection["train-val"]  # the validation score is kept
    # The kept states are the states at the selected steps: their test accuracy is the recorded one.
    num = int(np.max(np.asarray(test.envs))) + 1
    for name in ("train-val", "oracle"):
        for i in range(4):
            state = jax.tree_util.tree_map(lambda a, i=i: a[i], res.selected_states[name])
            per_env = jaxirm.evaluate(solver, state, test, num)
            counts = np.bincount(np.asarray(test.envs), minlength=num)
            pooled = float(np.sum(np.asarray(per_env) * counts) / counts.sum())
            assert pooled == pytest.approx(res.selection[name]["test_mean"][i], abs=1e-6)
    with pytest.raises(ValueError, match="either grid or configs"):
        jaxirm.sweep(solver, batch, 10, seeds=1, grid={"lam": [1.0]}, configs=points)


def _fake_result(val, test_mean, metric="accuracy"):
    """A SweepResult of 2 seeds × 2 points with given histories [R, T] (no training)."""
    val, test_mean = np.asarray(val, float), np.asarray(test_mean, float)
    runs, steps = val.shape
    history = {
        "step": np.tile(np.arange(1, steps + 1) * 10, (runs, 1)),
        "val": val,
        "test_mean": test_mean,
        "test_worst": test_mean - 0.1,
    }
    configs = [{"seed": s, "lam": lam} for s in (0, 1) for lam in (10.0, 1000.0)]
    selection = jaxirm.selection.select_steps(history, metric)
    return SweepResult(configs, None, history, selection, np.zeros(runs, bool), metric)


def test_train_val_and_oracle_pick_different_configurations():
    # lam=10 validates better (0.9 vs 0.8) but tests worse (0.6 vs 0.85): train-val picks it, oracle does not.
    val = [[0.7, 0.9], [0.8, 0.7], [0.7, 0.9], [0.8, 0.7]]
    test = [[0.5, 0.6], [0.85, 0.7], [0.55, 0.6], [0.85, 0.75]]
    res = _fake_result(val, test)
    tv = select_config(res, "train-val")
    oracle = select_config(res, "oracle")
    assert tv.config == {"lam": 10.0} and oracle.config == {"lam": 1000.0}
    assert tv.score == pytest.approx(0.9) and list(tv.step) == [20, 20]
    np.testing.assert_allclose(tv.test_mean, [0.6, 0.6])
    np.testing.assert_allclose(oracle.test_mean, [0.85, 0.85])
    summary = tv.summary()
    assert summary["val"] == pytest.approx(0.9) and summary["test_mean"] == pytest.approx(0.6)
    np.testing.assert_allclose(tv.scores, [0.9, 0.8])
    # MSE: lower is better.
    mse = select_config(_fake_result([[0.7, 0.9], [0.8, 0.6]] * 2, test, metric="mse"), "train-val")
    assert mse.config == {"lam": 1000.0} and list(mse.step) == [20, 20] and mse.score == pytest.approx(0.6)
    with pytest.raises(ValueError, match="held-out sweeps"):
        select_config(res, "leave-one-env-out")
    with pytest.raises(ValueError, match="unknown configuration selection"):
        select_config(res, "final")


def test_a_diverged_configuration_is_never_selected():
    res = _fake_result([[0.7, 0.9], [0.8, 0.7]] * 2, [[0.5, 0.6], [0.85, 0.7]] * 2)
    res = res._replace(diverged=np.array([True, False, True, False]))
    assert select_config(res, "train-val").config == {"lam": 1000.0}


def _three_envs(seed):
    train, test = logit_z(seed, n_train=300, n_test=200)
    envs = np.asarray(train.envs).copy()
    envs[(envs == 0) & (np.arange(len(envs)) % 2 == 0)] = 2  # split environment 0 in two
    return Batch(train.x, train.y, envs), Batch(test.x, test.y, test.envs)


def test_leave_one_env_out_selection():
    solver = solvers.irm(MLP(), penalty="tv_l1", num_envs=3)
    data = [_three_envs(s) for s in range(2)]
    stack = lambda i: jax.tree_util.tree_map(lambda *a: np.stack(a), *[d[i] for d in data])  # noqa: E731
    train, test = stack(0), stack(1)
    points = [{"lam": 10.0, "lr": 0.02}, {"lam": 1000.0, "lr": 0.001}]
    common = dict(seeds=[0, 1], configs=points, eval_every=10, data_per_seed=True)
    res = jaxirm.sweep(solver, train, 30, test=test, **common)
    held = leave_one_env_out(solver, train, 30, **common)
    assert len(held) == 3
    choice = select_config(res, "leave-one-env-out", held_out=held)
    expected = np.mean([np.max(h.history["val"], -1) for h in held], 0)  # not exactly: step chosen jointly
    assert choice.index in (0, 1) and choice.test_mean.shape == (2,)
    joint = np.mean([h.history["val"] for h in held], 0).max(-1).reshape(2, 2).mean(0)
    np.testing.assert_allclose(choice.scores, joint, rtol=1e-6)
    assert choice.scores[choice.index] == pytest.approx(joint.max()) and expected.shape == (4,)
    two = Batch(*_data()[0])
    with pytest.raises(ValueError, match=">= 3 training environments"):
        leave_one_env_out(solver, two, 10, seeds=1)


# ---------------------------------------------------------------------------------------------------------
# Provenance, durability, locks, partial runs


def test_rows_record_provenance_and_a_changed_environment_reruns(tmp_path, monkeypatch):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    rows = experiments.read_results(tmp_path)
    p = rows[0]["provenance"]
    for key in ("jaxirm", "jax", "jaxlib", "optax", "flax", "backend", "device_kind", "data", "method"):
        assert p[key] is not None, key
    assert p["method"]["hparams"]["lr"] == 0.02 and p["method"]["solver"]
    assert len({r["provenance"]["data"] for r in rows}) == 2  # one fingerprint per seed
    assert "provenance: jaxirm" in (tmp_path / "table.md").read_text()
    # Same code and data: reused.
    lines = []
    experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert any("already in" in line for line in lines)
    # Another jax version (as after an upgrade): stale, rerun, and the log says why.
    env = provenance.environment()
    monkeypatch.setattr(provenance, "_static", lambda: {**env, "jax": "0.0.1"})
    lines = []
    experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert any("stale" in line and "-> 0.0.1" in line for line in lines)
    assert len(experiments.read_results(tmp_path)) == 2 * 2 * 3
    # --reuse-stale keeps the rows on purpose.
    monkeypatch.setattr(provenance, "_static", lambda: {**env, "jax": "9.9.9"})
    lines = []
    experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append, reuse_stale=True)
    assert any("already in" in line for line in lines)


def test_rows_without_provenance_rerun(tmp_path):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    path = tmp_path / "results.jsonl"
    old = [json.loads(line) for line in path.read_text().splitlines()]
    for row in old:  # as an older jaxirm wrote them
        row.pop("provenance"), row.pop("run_id")
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    lines = []
    table = experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert any("no provenance recorded" in line for line in lines)
    assert {e["seeds"] for e in table} == {2}  # the old rows are not averaged in


def test_a_torn_tail_is_dropped_and_its_run_recomputed(tmp_path):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    path = tmp_path / "results.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # killed mid-write: seed 1's last row is torn
    assert len(experiments.read_results(tmp_path)) == 5
    lines = []
    table = experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert any("torn" in line for line in lines)
    assert any("seed 1: incomplete row set" in line for line in lines)
    assert any("1 seeds × 30 steps" in line for line in lines)  # only seed 1 reruns
    assert {e["seeds"] for e in table} == {2}
    rows = experiments.read_results(tmp_path)
    done, incomplete = _store.complete_sets(rows, ["final", "train-val", "oracle"])
    assert sorted(done) == [("ERM", 0), ("ERM", 1)] and not incomplete and len(rows) == 6
    lines = []
    experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert lines == [f"[1/1] ERM: all 2 seeds already in {tmp_path / 'results.jsonl'}"]


def test_a_second_run_into_a_locked_folder_fails_fast(tmp_path, capsys):
    exp = _tiny(methods=("ERM",))
    with _store.lock(tmp_path):
        with pytest.raises(RuntimeError, match="another jaxirm run holds"):
            experiments.reproduce(exp, out=tmp_path, plot=False)
        code = main(["reproduce", "simulation", "--out", str(tmp_path), "--steps", "5", "--method", "ERM"])
        err = capsys.readouterr().err
        assert code == 1 and "another jaxirm run holds" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results.jsonl").exists()
    experiments.reproduce(exp, out=tmp_path, plot=False)  # released: runs


def test_a_partial_run_never_replaces_the_full_tables(tmp_path):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    full = (tmp_path / "table.md").read_text()
    table = experiments.reproduce(exp, out=tmp_path, plot=False, seeds=1, overrides={"lr": 0.05})
    assert (tmp_path / "table.md").read_text() == full
    part = tmp_path / "partial" / "seeds1_lr=0.05" / "table.md"
    assert part.exists() and "n/a" not in full
    assert table[0]["seeds"] == 1 and table[0]["registered"] is False
    rows = experiments.read_results(tmp_path)
    assert {r["hparams"]["lr"] for r in rows} == {0.02, 0.05}
    with pytest.raises(ValueError, match="no chosen method has a hyperparameter 'nope'"):
        experiments.reproduce(exp, out=tmp_path, overrides={"nope": 1.0})


# ---------------------------------------------------------------------------------------------------------
# Checkpoints, search command


def test_checkpoint_round_trip(tmp_path):
    exp = _tiny(methods=("IRM-TV-l1",))
    experiments.reproduce(exp, out=tmp_path, plot=False, checkpoints=True)
    rows = experiments.read_results(tmp_path)
    _, _, test = exp.data(1)
    batch = Batch(test.x, test.y, test.envs)
    for row in (r for r in rows if r["seed"] == 1):
        state, meta = jaxirm.load(tmp_path / row["checkpoint"])
        assert meta["selection"] == row["selection"] and meta["step"] == row["step"]
        solver = exp.methods[0].build()
        per_env = np.asarray(jaxirm.evaluate(solver, state, batch, int(test.envs.max()) + 1))
        counts = np.bincount(test.envs)
        assert float(per_env @ counts / counts.sum()) == pytest.approx(row["test_mean"], abs=1e-6)
        if row["selection"] != "oracle":  # oracle's worst is selected apart from its mean
            assert float(per_env[counts > 0].min()) == pytest.approx(row["test_worst"], abs=1e-6)
        assert solver.predict(state, batch.x).shape[0] == len(test.y)
    with pytest.raises(FileNotFoundError):
        jaxirm.load(tmp_path)


def test_cli_search_and_set(tmp_path, monkeypatch, capsys):
    experiments.register("tiny-research", lambda: _tiny(), overwrite=True)
    out = tmp_path / "search"
    args = ["search", "tiny-research", "--trials", "3", "--seeds", "2", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "oracle (test-set oracle)" in text and "leave-one-env-out: n/a" in text
    rows = experiments.read_search(out)
    assert [(r["method"], r["selection"]) for r in rows] == [
        ("ERM", "train-val"),
        ("ERM", "oracle"),
        ("IRM-TV-l1", "train-val"),
        ("IRM-TV-l1", "oracle"),
    ]
    # the searched names, and the norm the method registers (IRM-TV-ℓ1's solver takes it as data)
    assert set(rows[2]["config"]) == {"lam", "lr", "l2", "anneal_steps", "tv_norm"}
    assert rows[2]["config"]["tv_norm"] == 1.0 and len(rows[2]["scores"]) == 3
    assert "lam" not in rows[0]["space"]  # ERM has no penalty weight to search
    assert main(args) == 0  # reused
    assert "search already in" in capsys.readouterr().err
    res = tmp_path / "res"
    assert main(["reproduce", "tiny-research", "--out", str(res), "--set", "lam=100", "--no-plot"]) == 0
    rows = experiments.read_results(res)
    assert {r["hparams"].get("lam") for r in rows if r["method"] == "IRM-TV-l1"} == {100.0}
    assert (res / "partial" / "lam=100" / "table.md").exists() and not (res / "table.md").exists()
    assert main(["reproduce", "tiny-research", "--out", str(res), "--set", "lam"]) == 2
    assert experiments.get("simulation").search_space.describe()["lam"] == "log-uniform [10, 10000]"
