"""A fast smoke run (2 seeds, a few steps, every method) of every registered experiment.

Experiments whose data comes from an optional package skip when it is missing, unless
``JAXIRM_REQUIRE_DATA=1`` (CI installs every data package and sets it, so nothing is skipped there).
"""

import math
import os

import pytest

from jaxirm import experiments

BUILT_IN = ["simulation", "corrupted-env", "adult", "cmnist", "house"]
STEPS = 12


def test_every_built_in_experiment_is_registered():
    assert set(BUILT_IN) <= set(experiments.names())


@pytest.mark.parametrize("name", BUILT_IN)
def test_experiment_smoke(name, tmp_path):
    exp = experiments.get(name)
    try:
        table = experiments.reproduce(exp, seeds=2, steps=STEPS, out=tmp_path, plot=False)
    except ImportError as err:
        if os.environ.get("JAXIRM_REQUIRE_DATA"):
            raise
        pytest.skip(f"{name}: optional data not installed ({err})")
    rows = experiments.read_results(tmp_path)
    methods = [m.name for m in exp.methods]
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
    assert (tmp_path / "table.md").read_text().startswith(f"# {name}")
