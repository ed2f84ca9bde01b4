"""What a new user checks first: licence, citation, changelog, typing marker, extras, the Quickstart."""

import configparser
import re
from pathlib import Path

import pytest

import jaxirm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _requirements(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _names(reqs: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in reqs}


def test_license_is_apache_2(setup_cfg):
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert setup_cfg["metadata"]["license"] == "Apache-2.0"


def test_citation_cff_names_this_version_and_the_papers():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors"):
        assert cff.get(key), key
    assert cff["version"] == jaxirm.__version__
    assert cff["license"] == "Apache-2.0"
    titles = " | ".join(ref["title"] for ref in cff["references"])
    assert "Total Variation Model" in titles and "Out-of-distribution Generalization" in titles


def test_readme_bibtex_and_changelog_follow_the_version():
    readme = (ROOT / "README.md").read_text()
    bibtex = readme[readme.index("```bibtex") :]
    assert f"version = {{{jaxirm.__version__}}}" in bibtex
    assert f"## [{jaxirm.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_py_typed_ships_with_the_package(setup_cfg):
    assert (Path(jaxirm.__file__).parent / "py.typed").is_file()
    assert "py.typed" in setup_cfg["options.package_data"]["jaxirm"]


def test_core_dependencies_and_extras(setup_cfg):
    core = _names(_requirements(setup_cfg["options"]["install_requires"]))
    assert core == {"jax", "optax", "flax", "numpy"}  # jax brings jaxlib; chex is for the tests only
    extras = {k: _names(_requirements(v)) for k, v in setup_cfg["options.extras_require"].items()}
    assert extras["test"] == {"pytest", "hypothesis"}  # what jaxirm.testing needs in a user's tests
    # dev runs the whole suite: pytest's addopts use -n auto (xdist), the tests use chex, the CLI tests typer.
    assert extras["test"] | extras["cli"] | extras["docs"] | {"pytest-xdist", "chex", "ruff"} <= extras["dev"]
    assert {"jax"} == extras["cuda12"] == extras["cuda13"]


def test_readme_quickstart_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart") :]
    block = quickstart[quickstart.index("```bash") : quickstart.index("```", quickstart.index("```bash") + 7)]
    test_command = [line for line in block.splitlines() if "pytest" in line]
    assert len(test_command) == 1
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command[0] in ci, "CI must run the README's test command verbatim"
    assert '".[dev]"' in test_command[0]
