"""Smoke test of the environment-scaling benchmark harness: it runs, prints and writes its JSON report.

No timing assertions: the machine running the tests is shared and the sizes are tiny.
"""

import json
import sys
from pathlib import Path

import pytest
from _tolerance import f32_tol

# The harness lives in the top-level ``benchmarks`` package next to ``tests/``, not in the installed package.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

env_scaling = pytest.importorskip("benchmarks.env_scaling")

_RESULT_KEYS = {
    "formulation",
    "num_envs",
    "compile_s",
    "median_ms",
    "min_ms",
    "max_ms",
    "iqr_ms",
    "ratio",
    "times_ms",
}


def test_smoke_main_writes_report(tmp_path, capsys):
    out = tmp_path / "nested" / "env_scaling.json"
    status = env_scaling.main(["--smoke", "--repeats", "2", "--out", str(out)])
    assert status == 0  # smoke mode never fails, whatever the timings

    printed = capsys.readouterr().out
    assert "formulation" in printed and "ratio vs E=2" in printed
    assert "PASS" in printed or "FAIL" in printed

    report = json.loads(out.read_text())
    assert {"benchmark", "objective", "config", "environment", "results", "headline", "agreement"} <= set(
        report
    )
    assert report["benchmark"] == "env_scaling"

    config = report["config"]
    assert config["smoke"] is True
    assert config["n"] == env_scaling.SMOKE_N
    assert config["num_envs"] == [2, 8]
    assert config["repeats"] == 2
    assert config["baseline_num_envs"] == 2
    assert config["interleave"] == "formulation"

    environment = report["environment"]
    assert {"jax_version", "device_kind", "cpu_count", "backend"} <= set(environment)

    results = report["results"]
    assert {(r["formulation"], r["num_envs"]) for r in results} == {
        (f, e) for f in env_scaling.FORMULATIONS for e in (2, 8)
    }
    for r in results:
        assert _RESULT_KEYS <= set(r)
        assert len(r["times_ms"]) == 2
        assert r["median_ms"] > 0 and r["compile_s"] > 0
        if r["num_envs"] == 2:
            assert r["ratio"] == pytest.approx(1.0)

    headline = report["headline"]
    assert headline["formulation"] == "labels"
    assert (headline["num_envs"], headline["baseline_num_envs"]) == (8, 2)
    assert headline["threshold"] == env_scaling.THRESHOLD
    assert isinstance(headline["passed"], bool)

    # The O(n + E) formulation computes the same penalty and gradient as the naive per-environment one.
    assert [a["num_envs"] for a in report["agreement"]] == [2, 8]
    for a in report["agreement"]:
        assert a["value_abs_diff"] <= 1e-5 * max(1.0, abs(a["value"]))
        assert a["grad_max_abs_diff"] <= 1e-4 * max(1e-6, a["grad_max_abs"])


def test_naive_matches_scale_grads_with_empty_env():
    import jax.numpy as jnp

    import jaxirm
    from jaxirm.losses import bce_with_logits, scale_derivative

    logits = jnp.array([1.0, -1.0, 2.0, 0.5, -0.3])
    y = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0])
    labels = jnp.array([0, 0, 2, 2, 0])  # environment 1 is empty
    expected = jaxirm.scale_grads(bce_with_logits, logits, y, labels, num_envs=3)
    naive = env_scaling.naive_scale_grads(bce_with_logits, logits, y, jaxirm.one_hot(labels, 3))
    # two float32 weighted means of ≤ 5 derivatives (≤ 6 roundings each): ≤ 4·(2·5 + 7)·eps32·max|d|
    d_max = float(jnp.abs(scale_derivative(bce_with_logits, logits, y)).max())
    assert naive.tolist() == pytest.approx(expected.tolist(), abs=f32_tol(2 * 5 + 7, d_max))
    assert float(naive[1]) == 0.0


def test_benchmark_plot_draws_goals_and_env_scaling(tmp_path):
    from benchmarks import plot

    goal = {"name": "g", "value": 10.0, "op": ">=", "threshold": 20.0, "unit": "x", "passed": False}
    first = {"benchmark": "compare", "goals": [{**goal, "section": "single"}]}
    rerun = {"benchmark": "compare", "goals": [{**goal, "value": 40.0, "passed": True, "section": "single"}]}
    envs = {
        "benchmark": "env_scaling",
        "results": [{"formulation": "labels", "num_envs": e, "median_ms": 1.0 + e / 100} for e in (2, 8, 64)],
    }
    paths = []
    for i, data in enumerate((first, rerun, envs)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(data))
    goals, cases = plot.load_goals(paths)
    assert [g["value"] for g in goals] == [40.0] and len(cases) == 3  # the rerun overrides
    assert plot.goal_ratio(goals[0]) == 2.0
    assert plot.goal_ratio({"value": 2.0, "op": "<=", "threshold": 5.0}) == 2.5
    out = tmp_path / "fig.png"
    assert plot.main([*map(str, paths), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a benchmarks"):
        plot.load_goals([tmp_path / "bad.json"])


def test_big_sweep_smoke(tmp_path):
    from benchmarks import big_sweep

    out = tmp_path / "big.json"
    assert big_sweep.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["runs"] == 4 and result["diverged"] == 0
    assert 0.5 < result["test_mean"] <= 1.0 and result["us_per_run_step"] > 0
