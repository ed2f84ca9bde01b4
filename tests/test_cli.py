"""The command line and the Quickstart demo."""

import pathlib
import subprocess
import sys

import pytest

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


def test_cli_version(capsys):
    import jaxirm

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jaxirm {jaxirm.__version__}"


_USER_MODULE = """
from jaxirm import experiments, solvers
from jaxirm.datasets import irm_sem
from jaxirm.experiments import Experiment, Method
from jaxirm.losses import squared_error
from jaxirm.models import MLP


@experiments.register("cwd-demo", overwrite=True)
def cwd_demo():
    return Experiment(
        name="cwd-demo",
        description="registered by a module in the current folder",
        load=lambda seed: irm_sem(seed, n_per_env=20),
        methods=(Method("ERM", lambda: solvers.erm(MLP(), loss=squared_error), {}),),
        num_steps=2,
        seeds=1,
        metric="mse",
    )
"""


def test_console_script_imports_a_module_of_the_current_folder(tmp_path):
    # docs/howto/experiments.md: `jaxirm reproduce NAME --import my_experiments` from the folder holding it.
    # The console script's sys.path starts with the script's folder, not the current one.
    script = pathlib.Path(sys.executable).parent / "jaxirm"
    if not script.exists():
        pytest.skip("the jaxirm console script is not installed next to this interpreter")
    (tmp_path / "my_cwd_experiments.py").write_text(_USER_MODULE)
    proc = subprocess.run(
        [str(script), "list", "--import", "my_cwd_experiments"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "cwd-demo: registered by a module in the current folder" in proc.stdout
