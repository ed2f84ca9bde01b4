"""The command line and the Quickstart demo."""

import os
import pathlib
import re
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
        # The older form of load, (train, val, test) with no validation set, still works.
        load=lambda seed: (lambda train, test: (train, None, test))(*irm_sem(seed, n_per_env=20)),
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


# ----------------------------------------------------------------------------------------------------------
# Bad --out, --import and results.jsonl: one line on stderr, exit 1 (2 for usage errors), nothing computed.

_ROW = (
    '{"experiment": "never-computed", "method": "ERM", "seed": 0, "selection": "final", "test_mean": 0.5, '
    '"test_worst": 0.4, "step": 2, "diverged": false, "steps": 2, "hparams": {}, "metric": "mse"}'
)


@pytest.fixture
def never_computed():
    """A registered experiment whose data loading fails the test: the errors must come before it."""
    from jaxirm import experiments, solvers
    from jaxirm.experiments import Experiment, Method
    from jaxirm.losses import squared_error
    from jaxirm.models import MLP

    def load(seed):
        raise AssertionError("the experiment was run: the error came too late")

    experiments.register(
        "never-computed",
        lambda: Experiment(
            name="never-computed",
            description="fails if anything is loaded or trained",
            load=load,
            methods=(Method("ERM", lambda: solvers.erm(MLP(), loss=squared_error), {}),),
            num_steps=2,
            seeds=1,
            metric="mse",
        ),
        overwrite=True,
    )
    return "never-computed"


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for part in parts:
        assert part in err, err


def test_cli_out_that_is_a_file_fails_before_computing(tmp_path, capsys, never_computed):
    (tmp_path / "afile").write_text("")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["reproduce", never_computed, "--out", str(out), "--no-plot"]) == 1
        _one_line_error(capsys, "--out", str(out))


def test_cli_results_file_that_is_a_directory_fails_before_computing(tmp_path, capsys, never_computed):
    (tmp_path / "results.jsonl").mkdir()
    assert main(["reproduce", never_computed, "--out", str(tmp_path), "--no-plot"]) == 1
    _one_line_error(capsys, "results.jsonl", "not a writable file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_cli_read_only_out_fails_before_computing(tmp_path, capsys, never_computed):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["reproduce", never_computed, "--out", str(out), "--no-plot"]) == 1
        _one_line_error(capsys, "not a writable directory")
    finally:
        out.chmod(0o755)


def test_cli_unwritable_out_fails_before_computing(tmp_path, capsys, monkeypatch, never_computed):
    """The same as the read-only test, also as root: the write probe is refused."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert main(["reproduce", never_computed, "--out", str(tmp_path), "--no-plot"]) == 1
    _one_line_error(capsys, "--out", "not a writable directory (Permission denied)")


def test_reproduce_checks_out_before_computing(tmp_path, never_computed):
    from jaxirm import experiments

    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        experiments.reproduce(never_computed, out=tmp_path / "afile", plot=False)


@pytest.mark.parametrize("module", ["", "..x", ".relative"])
def test_cli_import_of_a_bad_module_name_is_a_usage_error(module, capsys):
    assert main(["list", "--import", module]) == 2
    err = capsys.readouterr().err
    assert "--import" in err and "not an absolute module name" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "bad_row, match",
    [
        ("[1, 2]", "a results row must be a JSON object, got a JSON list"),
        (_ROW.replace('"seed": 0, ', ""), "the results row lacks the field 'seed'"),
        (_ROW.replace('"test_mean": 0.5', '"test_mean": "0.5"'), "field 'test_mean' must be a JSON number"),
        (_ROW.replace('"seed": 0', '"seed": "0"'), "field 'seed' must be a JSON integer"),
        (_ROW.replace('"diverged": false', '"diverged": 0'), "field 'diverged' must be a JSON boolean"),
        ("{not json", "not a JSON row"),
    ],
    ids=["list", "no-seed", "string-metric", "string-seed", "int-diverged", "garbage"],
)
def test_malformed_results_row_names_file_and_line(tmp_path, capsys, never_computed, bad_row, match):
    from jaxirm import experiments

    path = tmp_path / "results.jsonl"
    path.write_text(_ROW + "\n" + bad_row + "\n" + _ROW + "\n")
    with pytest.raises(ValueError, match=rf"results\.jsonl:2: {re.escape(match)}"):
        experiments.read_results(tmp_path)
    assert main(["reproduce", never_computed, "--out", str(tmp_path), "--no-plot"]) == 1
    _one_line_error(capsys, f"{path}:2", match)


def test_torn_last_results_line_is_still_ignored(tmp_path):
    from jaxirm import experiments

    (tmp_path / "results.jsonl").write_text(_ROW + "\n\n" + _ROW + "\n" + _ROW[:30])
    assert len(experiments.read_results(tmp_path)) == 2


def test_reproduce_fills_the_compile_cache_and_a_rerun_reuses_it(tmp_path):
    # `jaxirm reproduce` keeps its compiled programs in JAX's persistent cache (default on; the test session
    # turns it off with JAXIRM_COMPILE_CACHE=0 so that in-process CLI tests leave jax's config alone).
    # Two methods: the second compiles in a background thread while the first trains (compile-ahead).
    two = _USER_MODULE.replace("num_steps=2", "num_steps=30").replace(
        'methods=(Method("ERM", lambda: solvers.erm(MLP(), loss=squared_error), {}),),',
        'methods=(Method("ERM", lambda: solvers.erm(MLP(), loss=squared_error), {}), '
        'Method("ERM-l2", lambda: solvers.erm(MLP(hidden=(4,)), loss=squared_error), {"l2": 0.01})),',
    )
    assert "ERM-l2" in two
    (tmp_path / "my_cwd_experiments.py").write_text(two)
    env = {**os.environ, "JAXIRM_COMPILE_CACHE": "1", "JAXIRM_CACHE_DIR": str(tmp_path / "xla")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "jaxirm", "reproduce", "cwd-demo", "--import", "my_cwd_experiments"]
    first = subprocess.run(
        [*cmd, "--out", str(tmp_path / "a"), "--no-plot"], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    cached = [p for p in (tmp_path / "xla").iterdir() if p.name.startswith("jit__program")]
    assert len(cached) >= 2, f"the two methods' sweep programs are not in the cache: {cached}"
    # a user's experiment: its solvers are the user's code, so no compiled program is kept beside the cache
    assert not (tmp_path / "xla" / "jaxirm-programs").exists()
    off = subprocess.run(
        [*cmd, "--out", str(tmp_path / "b"), "--no-plot", "--no-compile-cache"],
        env={**env, "JAXIRM_CACHE_DIR": str(tmp_path / "unused")},
        capture_output=True,
        text=True,
    )
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "unused").exists()
    rows = [(tmp_path / d / "results.jsonl").read_text() for d in ("a", "b")]
    assert rows[0].count("\n") == rows[1].count("\n") > 0 and all('"ERM-l2"' in r for r in rows)


def _rows_without_run_facts(path):
    import json

    drop = ("run_id", "sweep_wall_s", "provenance")
    return [
        {k: v for k, v in json.loads(line).items() if k not in drop} for line in path.read_text().splitlines()
    ]


def test_reproduce_keeps_builtin_programs_and_a_rerun_loads_them(tmp_path):
    # jaxirm's own experiments keep each method's compiled sweep program in <cache>/jaxirm-programs, so a
    # rerun skips tracing; the rerun loads them (the files are not rewritten) and computes the same rows.
    env = {**os.environ, "JAXIRM_COMPILE_CACHE": "1", "JAXIRM_CACHE_DIR": str(tmp_path / "xla")}
    base = [sys.executable, "-m", "jaxirm", *"reproduce simulation --seeds 2 --steps 20 --no-plot".split()]
    cmd = [*base, "--method", "ERM", "--method", "IRM"]

    def reproduce(out, methods=cmd):
        proc = subprocess.run(
            [*methods, "--out", str(tmp_path / out)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return _rows_without_run_facts(tmp_path / out / "results.jsonl")

    store = tmp_path / "xla" / "jaxirm-programs"
    reproduce("erm", [*base, "--method", "ERM"])  # one method: its program is kept too
    assert len(list(store.iterdir())) == 1
    first = reproduce("a")  # ERM's program loaded, IRM's compiled and kept
    stored = {p.name: p.stat().st_ino for p in store.iterdir()}  # a rewritten file is a new inode
    assert len(stored) == 2 and all(name.endswith(".program") for name in stored), stored
    second = reproduce("b")
    assert {p.name: p.stat().st_ino for p in store.iterdir()} == stored  # loaded, not made again
    assert second == first and len(first) == 2 * 2 * 3  # methods × seeds × selections
    # Without the store, JAX's own cache answers the compilation: such an executable must not be stored
    # (jaxlib 0.10.2 serializes it into a payload that aborts the run that loads it), so the runs after
    # trace and load from JAX's cache, and compute the same rows.
    for p in store.iterdir():
        p.unlink()
    assert reproduce("c") == first
    assert not list(store.iterdir())
    assert reproduce("d") == first
