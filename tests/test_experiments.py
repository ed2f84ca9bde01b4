"""The experiment registry, the reproduction runner (incremental results, resume) and the CLI."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jaxirm import experiments
from jaxirm.cli import main
from jaxirm.experiments import Experiment, Method, PaperEntry


def test_registry_lists_and_gets_simulation():
    assert "simulation" in experiments.names()
    exp = experiments.get("simulation")
    names = [m.name for m in exp.methods]
    for required in (
        "ERM",
        "IRM",
        "IRM-TV-l1",
        "VREx",
        "ZIN",
        "Minimax-TV-l1",
        "OOD-TV-IRM-l1",
        "OOD-TV-IRM-l2",
        "OOD-TV-Minimax-l1",
        "OOD-TV-Minimax-l2",
        "EIIL",
    ):
        assert required in names
    assert exp.ceiling == pytest.approx(0.8899, abs=1e-4)
    assert exp.method("IRM-TV-l1").paper.worst == pytest.approx(0.8618)
    with pytest.raises(KeyError, match="no method"):
        exp.method("nope")


def test_unknown_experiment_and_duplicate_registration():
    with pytest.raises(KeyError, match="unknown experiment"):
        experiments.get("no-such-experiment")
    with pytest.raises(ValueError, match="already registered"):
        experiments.register("simulation", lambda: None)


def _tiny(name="tiny", methods=("ERM", "IRM-TV-l1")) -> Experiment:
    base = experiments.get("simulation")
    from jaxirm.datasets import logit_z

    def load(seed):
        train, test = logit_z(seed, n_train=200, n_test=200)
        val, _ = logit_z(seed + 99, n_train=100, n_test=4)
        return train, val, test

    chosen = tuple(
        Method(
            m.name,
            m.build,
            {**m.hparams, "anneal_steps": 10.0} if "anneal_steps" in m.hparams else m.hparams,
            m.paper,
        )
        for m in base.methods
        if m.name in methods
    )
    return Experiment(
        name=name,
        description="tiny",
        load=load,
        methods=chosen,
        num_steps=30,
        seeds=2,
        eval_every=10,
        ceiling=base.ceiling,
    )


def test_reproduce_writes_rows_tables_and_plot(tmp_path):
    exp = _tiny()
    table = experiments.reproduce(exp, out=tmp_path)
    rows = experiments.read_results(tmp_path)
    assert len(rows) == 2 * 2 * 3  # methods × seeds × selections
    assert {r["selection"] for r in rows} == {"final", "train-val", "oracle"}
    for r in rows:
        assert 0.0 <= r["test_worst"] <= r["test_mean"] <= 1.0
    assert (tmp_path / "table.csv").exists() and (tmp_path / "plot.png").stat().st_size > 0
    md = (tmp_path / "table.md").read_text()
    assert "| IRM-TV-l1 |" in md and "0.8713 ± 0.0201" in md
    final = [e for e in table if e["selection"] == "final" and e["method"] == "IRM-TV-l1"][0]
    ours = [r["test_worst"] for r in rows if r["method"] == "IRM-TV-l1" and r["selection"] == "final"]
    assert final["worst"] == pytest.approx(np.mean(ours))
    assert final["ceiling_gap_worst"] == pytest.approx(exp.ceiling - np.mean(ours))


def test_rerun_skips_finished_pairs_and_survives_a_torn_line(tmp_path):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    path = tmp_path / "results.jsonl"
    before = path.read_text()
    with path.open("a") as fh:
        fh.write('{"experiment": "tiny", "method": "ER')  # a run killed mid-write
    lines = []
    experiments.reproduce(exp, out=tmp_path, plot=False, log=lines.append)
    assert any("already in" in line for line in lines)
    assert path.read_text().startswith(before)
    assert len(experiments.read_results(tmp_path)) == len(before.splitlines())
    # One more seed runs only the missing seed.
    experiments.reproduce(exp, out=tmp_path, seeds=3, plot=False)
    rows = experiments.read_results(tmp_path)
    assert sorted({r["seed"] for r in rows}) == [0, 1, 2]
    assert len(rows) == 3 * 3
    # Fewer seeds than are stored: the tables cover only the requested ones.
    table = experiments.reproduce(exp, out=tmp_path, seeds=2, plot=False)
    assert {e["seeds"] for e in table} == {2}
    assert len(experiments.read_results(tmp_path)) == 3 * 3


def test_rerun_with_changed_hyperparameters_recomputes(tmp_path):
    exp = _tiny(methods=("ERM",))
    experiments.reproduce(exp, out=tmp_path, plot=False)
    (erm,) = exp.methods
    changed = dataclasses.replace(
        exp, methods=(dataclasses.replace(erm, hparams={**erm.hparams, "lr": 0.05}),)
    )
    lines = []
    table = experiments.reproduce(changed, out=tmp_path, plot=False, log=lines.append)
    assert not any("already in" in line for line in lines)
    rows = experiments.read_results(tmp_path)
    assert len(rows) == 2 * 2 * 3  # both runs kept in results.jsonl ...
    assert {e["seeds"] for e in table} == {2}  # ... the table holds only the current hyperparameters
    assert sorted({r["hparams"]["lr"] for r in rows}) == [0.02, 0.05]


def test_paper_comparison_flag():
    exp = Experiment(
        name="flag",
        description="",
        load=lambda s: None,
        methods=(Method("A", lambda: None, {}, PaperEntry(0.8, 0.01, 0.7, 0.01)),),
        num_steps=1,
    )
    rows = [
        {"method": "A", "selection": "final", "test_mean": m, "test_worst": w, "diverged": False}
        for m, w in ((0.79, 0.69), (0.79, 0.69))
    ]
    (entry,) = experiments.summarize(exp, rows)
    assert entry["within_2std"] is True
    rows[0]["test_worst"] = rows[1]["test_worst"] = 0.6
    (entry,) = experiments.summarize(exp, rows)
    assert entry["within_2std"] is False


def test_paper_comparison_flag_for_mse_is_lower_is_better():
    exp = Experiment(
        name="flag-mse",
        description="",
        load=lambda s: None,
        methods=(Method("A", lambda: None, {}, PaperEntry(0.30, 0.01, 0.40, 0.01)),),
        num_steps=1,
        metric="mse",
    )

    def flag(mean, worst):
        rows = [
            {"method": "A", "selection": "final", "test_mean": mean, "test_worst": worst, "diverged": False}
        ]
        return experiments.summarize(exp, rows)[0]["within_2std"]

    assert flag(0.31, 0.41) is True  # slightly worse, within two stds
    assert flag(0.10, 0.20) is True  # far better (lower) than the paper
    assert flag(0.33, 0.40) is False  # mean MSE more than two stds above
    assert flag(0.30, 0.43) is False  # worst MSE more than two stds above


def test_cli_reproduce_smoke(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(
        [
            "reproduce",
            "simulation",
            "--seeds",
            "2",
            "--steps",
            "20",
            "--method",
            "IRM-TV-l1",
            "--out",
            str(out),
            "--no-plot",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "IRM-TV-l1" in text and "invariant ceiling: 0.8899" in text
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in rows} == {0, 1} and all(r["steps"] == 20 for r in rows)


def test_cli_unknown_experiment_is_a_usage_error(capsys):
    assert main(["reproduce", "no-such-experiment"]) == 2


def test_corrupted_env_experiment_data():
    # Its smoke run is in test_experiments_smoke.py.
    exp = experiments.get("corrupted-env")
    assert [m.name for m in exp.methods] == ["ERM", "IRM", "IRM-TV-l1", "VREx"]
    train, val, test = exp.load(0)
    assert train.num_envs == 8 and test.num_envs == 4 and val.num_envs == 8


def test_cli_imports_a_users_module_that_registers_an_experiment(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_jaxirm_plugin.py").write_text(
        "from jaxirm import experiments\n"
        "from test_experiments import _tiny\n"
        "experiments.register('plugin-tiny', lambda: _tiny('plugin-tiny', ('ERM',)), overwrite=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert main(["list", "--import", "my_jaxirm_plugin"]) == 0
    assert "plugin-tiny" in capsys.readouterr().out
    out = tmp_path / "out"
    args = ["reproduce", "plugin-tiny", "--import", "my_jaxirm_plugin", "--out", str(out), "--no-plot"]
    assert main(args) == 0
    assert (out / "table.md").read_text().startswith("# plugin-tiny")
    assert main(["list", "--import", "no_such_module_xyz"]) == 2


def test_cli_reports_missing_data_without_a_traceback(tmp_path, capsys):
    def load(seed):
        raise ImportError("needs the Foo files: pip install foo")

    base = _tiny("needs-data", ("ERM",))
    experiments.register("needs-data", lambda: dataclasses.replace(base, load=load), overwrite=True)
    assert main(["reproduce", "needs-data", "--out", str(tmp_path), "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "pip install foo" in err and "Traceback" not in err


def test_cli_data_dir_points_user_data_experiments_at_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXIRM_DATA", "unused")  # restored after the test (the CLI sets it)
    folder = tmp_path / "my-data"
    assert (
        main(["reproduce", "house-kc", "--data-dir", str(folder), "--out", str(tmp_path), "--no-plot"]) == 1
    )
    err = capsys.readouterr().err
    assert str(folder / "kc_house_data.csv") in err and "Traceback" not in err
