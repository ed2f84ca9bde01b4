"""The command line and the Quickstart demo."""

import subprocess
import sys

from jaxirm.cli import main
from jaxirm.demo import run_demo


def test_demo_separates_invariant_from_spurious_model(capsys):
    rows = run_demo(seed=0, steps=300)
    out = capsys.readouterr().out
    assert "IRM-TV-l1" in out and "invariant ceiling" in out
    spurious, invariant = rows
    assert spurious["irm_tv_l2"] > 20 * invariant["irm_tv_l2"]
    assert spurious["irm_tv_l1"] > 20 * invariant["irm_tv_l1"]
    assert invariant["test_worst"] > spurious["test_worst"] + 0.1
    for row in rows:
        assert row["irm_tv_l1"] <= row["irm_tv_l2"] * (1 + 1e-5)


def test_cli_demo(capsys):
    assert main(["demo", "--steps", "50"]) == 0
    assert "IRM (TV-l2)" in capsys.readouterr().out


def test_cli_rejects_bad_steps():
    assert main(["demo", "--steps", "0"]) == 2


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "jaxirm", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "demo" in out
