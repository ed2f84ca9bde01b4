"""The code the documentation includes runs (the pages include these files, so they cannot go stale)."""

import pathlib
import runpy

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "docs" / "examples").glob("*.py"))


def test_examples_exist():
    assert EXAMPLES, "docs/examples holds the code the documentation pages include"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    capsys.readouterr()
