"""A fast smoke run (2 seeds, a few steps) of every registered experiment.

The default run covers three methods of each experiment (ERM, IRM-TV-ℓ1 and Minimax-TV-ℓ1 where it has
them: plain, penalised, and with environments inferred from z); ``-m slow`` runs every method.

Experiments whose data comes from an optional package skip when it is missing, unless
``JAXIRM_REQUIRE_DATA=1`` (CI installs every data package and sets it, so nothing is skipped there).
``cmnist-full`` reads the real MNIST files of the shared data folder (``$JAXIRM_MNIST_DIR``, see
``_mnist_files.py``); CI exports that folder and requires it.
"""

import csv
import math
import os

import numpy as np
import pytest
from _mnist_files import real_mnist_dir

from jaxirm import experiments
from jaxirm.datasets import KC_FEATURES
from jaxirm.experiments.cmnist import cmnist_full
from jaxirm.experiments.user_data import CELEBA_FILES

BUILT_IN = ["simulation", "corrupted-env", "adult", "cmnist", "house"]
USER_DATA = ["house-kc", "celeba"]  # data the user supplies: run here on generated files
MNIST_FULL = ["cmnist-full"]  # the real MNIST files of the shared data folder
STEPS = 12
FAST_METHODS = ("ERM", "IRM-TV-l1", "Minimax-TV-l1")


@pytest.fixture(scope="module")
def user_data_dir(tmp_path_factory):
    """A data folder with a small King County CSV (15 houses per decade 1900-2019) and CelebA CSVs."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    with open(folder / "kc_house_data.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "price", "yr_built", *KC_FEATURES])
        for i, year in enumerate(np.repeat(np.arange(1900, 2020, 10), 15) + rng.integers(0, 10, 180)):
            w.writerow(
                [i, round(rng.uniform(1e5, 1e6)), year, *rng.uniform(0, 50, len(KC_FEATURES)).round(2)]
            )
    (folder / "CelebA").mkdir()
    for name, n, envs in ((CELEBA_FILES[0], 60, 2), (CELEBA_FILES[1], 40, 4)):
        with open(folder / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["", *[f"x_{j}" for j in range(16)], "y_Smiling", *[f"z_{a}" for a in "ABCDEFG"], "g_env"]
            )
            for i in range(n):
                y = int(rng.integers(0, 2))
                w.writerow(
                    [i, *(rng.standard_normal(16) + y).round(3), y, *rng.integers(0, 2, 7), i * envs // n]
                )
    return folder


@pytest.mark.parametrize("every_method", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", USER_DATA)
def test_user_data_experiment_smoke(name, every_method, user_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXIRM_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="JAXIRM_DATA"):
        experiments.get(name).load(0)
    monkeypatch.setenv("JAXIRM_DATA", str(user_data_dir))
    _smoke(name, tmp_path, every_method)


def test_every_built_in_experiment_is_registered():
    assert set(BUILT_IN + USER_DATA + MNIST_FULL) <= set(experiments.names())


@pytest.mark.parametrize("every_method", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_cmnist_full_smoke(every_method, tmp_path, monkeypatch):
    """cmnist-full on the real MNIST files: the missing-data error, then 2 seeds on 2000 / 1000 images."""
    folder = real_mnist_dir()
    monkeypatch.setenv("JAXIRM_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="JAXIRM_DATA"):
        experiments.get("cmnist-full").load(0)
    monkeypatch.setenv("JAXIRM_DATA", str(folder))
    full = experiments.get("cmnist-full")
    assert [m.name for m in full.methods] == ["ERM", "IRM", "IRM-TV-l1"]
    assert (full.method("IRM").paper.mean, full.method("ERM").paper.mean) == (0.669, 0.171)
    exp = cmnist_full(n_train=2000, n_test=1000)
    train, val, test = exp.data(0)
    assert (train.x.shape[0], val.x.shape[0], test.x.shape[0]) == (1800, 200, 1000)
    # ERM and IRM, the rows compared with the paper (every method with -m slow)
    _smoke("cmnist-full", tmp_path / "out", every_method, exp=exp, fast=("ERM", "IRM"))


@pytest.mark.parametrize("every_method", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", BUILT_IN)
def test_experiment_smoke(name, every_method, tmp_path):
    try:
        experiments.get(name).load(0)
    except ImportError as err:
        if os.environ.get("JAXIRM_REQUIRE_DATA"):
            raise
        pytest.skip(f"{name}: optional data not installed ({err})")
    _smoke(name, tmp_path, every_method)


def _smoke(name, tmp_path, every_method, exp=None, fast=FAST_METHODS):
    exp = experiments.get(name) if exp is None else exp
    chosen = [m for m in exp.methods if every_method or m.name in fast]
    # EIIL trains the model only after its reference and inference phases: run it just past them.
    long = [m.name for m in chosen if m.build().min_steps > STEPS]
    methods = [m.name for m in chosen if m.name not in long]
    table = experiments.reproduce(exp, seeds=2, steps=STEPS, out=tmp_path, plot=False, methods=methods)
    for method in long:
        steps = exp.method(method).build().min_steps
        (entry, *_) = experiments.reproduce(
            exp, seeds=2, steps=steps, out=tmp_path / method, plot=False, methods=[method]
        )
        assert entry["method"] == method and math.isfinite(entry["mean"])
    rows = experiments.read_results(tmp_path)
    # One row per method x seed x selection, nothing lost, nothing duplicated.
    selections = {r["selection"] for r in rows}
    assert {"final", "oracle"} <= selections
    assert len(rows) == len(methods) * 2 * len(selections)
    assert [e["method"] for e in table if e["selection"] == "final"] == methods
    for e in table:
        assert e["seeds"] == 2
        for key in ("mean", "worst"):
            assert math.isfinite(e[key])
            if exp.metric == "accuracy":
                assert 0.0 <= e[key] <= 1.0
            else:
                assert e[key] >= 0.0
        if exp.metric == "accuracy":
            assert e["worst"] <= e["mean"] + 1e-6
        else:
            assert e["worst"] >= e["mean"] - 1e-6
    # A smoke run is a partial run: its tables go under partial/, never over the registered ones.
    tables = experiments.table_dir(exp, tmp_path, seeds=2, steps=STEPS, methods=methods)
    assert tables != tmp_path and not (tmp_path / "table.md").exists()
    assert (tables / "table.md").read_text().startswith(f"# {name}")
