"""Smoke test of the jaxirm-vs-PyTorch comparison harness: it runs every section and writes its JSON report.

No timing assertions: the machine running the tests is shared and the sizes are tiny. PyTorch is an optional
extra (``jaxirm[bench]``); without it the jaxirm parts still run and the PyTorch fields are empty, and the
PyTorch-specific tests are skipped.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _tolerance import f32_tol

# The harness lives in the top-level ``benchmarks`` package next to ``tests/``, not in the installed package.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

compare = pytest.importorskip("benchmarks.compare")


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


_GOAL_KEYS = {"name", "value", "op", "threshold", "unit", "passed", "section"}


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "nested" / "compare.json"
    status = compare.main(["--smoke", "--out", str(out)])
    return status, json.loads(out.read_text())


def test_smoke_runs_every_section(smoke_report):
    status, report = smoke_report
    assert status == 0  # goals never fail the command, and no section raised
    assert report["benchmark"] == "compare"
    assert set(report) >= {"config", "environment", "sections", "goals"}
    assert report["config"]["smoke"] is True
    assert report["config"]["sections"] == list(compare.SECTIONS)
    env = report["environment"]
    assert {"jax_version", "device_kind", "cpu_count", "backend", "torch"} <= set(env)
    assert (env["torch"] is not None) == _has_torch()
    assert set(report["sections"]) == set(compare.SECTIONS)
    for name, section in report["sections"].items():
        assert "error" not in section, section.get("traceback")
        assert section["section_s"] > 0
        assert section["goals"], name
    for g in report["goals"]:
        assert _GOAL_KEYS <= set(g)
        assert g["passed"] in (True, False, None)
        assert (g["passed"] is None) == (g["value"] is None)


def test_smoke_jaxirm_parts(smoke_report):
    _, report = smoke_report
    sections = report["sections"]

    single = sections["single"]
    rows = {r["implementation"]: r for r in single["rows"]}
    scan = rows["jaxirm scan, excl. compile"]
    assert scan["run_s"] > 0 and scan["compile_s"] > 0
    assert rows["jaxirm.fit end to end"]["test_mean"] > 0.5  # better than chance after 200 steps
    assert single["config"]["steps"] == compare.SMOKE.steps

    sweep = sections["sweep"]
    assert sweep["config"]["runs"] == compare.SMOKE.sweep_seeds * compare.SMOKE.sweep_lams
    assert sweep["jaxirm"]["per-seed data"]["run_s"] > 0
    flops = sweep["flops"]
    assert flops["peak"]["gflops"] > 0
    assert flops["per_run_step_analytic"] == compare.analytic_step_flops(compare.SMOKE.n_train, 10)

    envs = sections["envs"]
    assert [r["num_envs"] for r in envs["rows"]] == list(compare.SMOKE.envs_num_envs)
    assert envs["rows"][0]["jaxirm labels"]["ratio_vs_first"] == pytest.approx(1.0)

    datasize = sections["datasize"]
    assert [r["n"] for r in datasize["rows"]] == list(compare.SMOKE.datasize_n)
    memory = datasize["rows"][-1]["memory"]
    assert "error" not in memory, memory.get("error")
    assert 0 < memory["baseline_jax_mb"] <= memory["baseline_jaxirm_mb"] <= memory["peak_mb"]

    compile_ = sections["compile"]
    assert compile_["scan"]["total_s"] > 0, compile_["scan"]
    assert compile_["sweep"]["compile_s"] > 0, compile_["sweep"]
    assert compile_["sweep"]["runs"] == sweep["config"]["runs"]


def test_smoke_without_torch_skips_torch_columns(tmp_path):
    out = tmp_path / "compare.json"
    assert compare.main(["--smoke", "--no-torch", "--only", "single", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    single = report["sections"]["single"]
    assert report["environment"]["torch"] is None
    assert not any(r["implementation"].startswith("torch") for r in single["rows"])
    assert all(r["speedup"] is None for r in single["rows"])
    assert single["agreement"]["status"].startswith("n/a")
    assert all(g["passed"] is None for g in single["goals"])


def test_smoke_torch_parts(smoke_report):
    pytest.importorskip("torch")
    _, report = smoke_report
    sections = report["sections"]
    single = sections["single"]
    torch_row = single["rows"][0]
    assert torch_row["implementation"].startswith("torch")
    assert torch_row["run_s"] > 0 and torch_row["speedup"] == 1.0
    assert single["agreement"]["status"] in ("OK", "VOID")
    sweep = sections["sweep"]
    assert sweep["config"]["torch_runs_timed"] == compare.SMOKE.torch_sweep_runs
    assert sweep["config"]["torch_extrapolated"] is True
    assert any("extrapolated from" in r["implementation"] for r in sweep["rows"])
    for a in sections["envs"]["agreement"]:  # the per-environment loop computes the same penalty
        assert a["value_rel_diff"] < 1e-4
        assert a["grad_max_abs_diff"] <= 1e-4 * a["grad_max_abs"]


def test_torch_reference_matches_jaxirm_penalty():
    pytest.importorskip("torch")
    import jax.numpy as jnp

    import jaxirm
    from benchmarks import torch_reference
    from jaxirm.losses import bce_with_logits, scale_derivative

    rng = np.random.default_rng(0)
    logits = rng.normal(size=50).astype(np.float32)
    y = (rng.random(50) < 0.5).astype(np.float32)
    envs = np.repeat(np.arange(5), 10)
    envs[:10] = 4  # environment 0 is empty: it contributes 0 to the mean, as in jaxirm's uniform measure
    value, grad = torch_reference.env_loop_penalty_and_grad(logits, y, envs, 5)
    g = jaxirm.scale_grads(bce_with_logits, jnp.asarray(logits), jnp.asarray(y), jnp.asarray(envs), 5)
    # float32 both sides: g_e are means of 10 derivatives (≤ 6 roundings), within (2·10 + 7)·eps32·max|d|;
    # tv_l1 = (mean|g|)² moves by ≤ 2·max|g| times that, plus 4 roundings of its own
    d_max = float(np.abs(np.asarray(scale_derivative(bce_with_logits, logits, y))).max())
    tv = float(jaxirm.tv_l1(g))
    tol = 2 * float(np.abs(np.asarray(g)).max()) * f32_tol(2 * 10 + 7, d_max) + f32_tol(4, tv)
    assert value == pytest.approx(tv, abs=tol)
    assert grad.shape == (50,)


def test_torch_reference_trains_like_the_released_loop():
    pytest.importorskip("torch")
    from benchmarks import torch_reference
    from jaxirm.datasets import logit_z

    train, test = logit_z(0, n_train=400, n_test=400)
    out = torch_reference.train_irm_tv_l1(
        train.x, train.y, train.envs, num_steps=60, anneal_steps=30, seed=0, test=(test.x, test.y, test.envs)
    )
    assert out["num_steps"] == 60 and out["train_s"] > 0
    assert out["weight"].shape == (10,)
    assert np.isfinite(out["loss"]) and out["penalty"] >= 0
    # float32 accuracies k/100 of 4 equal environments against the pooled k/400: ≤ 6 roundings
    assert out["test_env"].shape == (4,)
    assert out["test_mean"] == pytest.approx(out["test_env"].mean(), rel=f32_tol(6))
    model = torch_reference.make_linear(10, seed=0)
    bound = np.sqrt(6.0 / 11.0)  # Xavier-uniform for fan_in 10, fan_out 1
    assert np.all(np.abs(model.weight.detach().numpy()) <= bound) and float(model.bias.detach()[0]) == 0.0
