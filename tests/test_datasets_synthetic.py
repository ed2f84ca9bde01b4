"""Synthetic generators: logit_z pinned values, logit_2z and the IRM linear SEM."""

import hashlib

import numpy as np
import pytest
from _tolerance import EPS32, assert_within, f32_tol

from jaxirm.datasets.synthetic import irm_sem, irm_sem_truth, logit_2z, logit_z, sem_errors


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def test_logit_z_values_are_pinned():
    # Recorded before `_logit_split` was refactored for logit_2z: the draw order must not change.
    train, test = logit_z(0)
    np.testing.assert_array_equal(
        train.x[0],
        np.array(
            [1.4665775, 1.2988119, 2.390081, -0.3138077, -0.5677195]
            + [0.37404642, 0.35293838, 1.9364505, 3.104837, 0.49514064],
            dtype=np.float32,
        ),
    )
    np.testing.assert_array_equal(train.y[:12], [1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(test.y[-12:], [0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0])
    assert _digest(train.x, train.y, train.envs, train.z) == "ebc757692bc48f92"
    assert _digest(test.x, test.y, test.envs, test.z) == "f961330a043e1a61"
    small_train, small_test = logit_z(
        3, n_train=101, n_test=7, p_s_train=(0.9, 0.8, 0.7), noise_ratio_train=(0.0, 0.2, 0.4)
    )
    assert small_train.x.shape == (99, 10) and small_test.x.shape == (4, 10)
    assert _digest(*small_train[:4]) == "1e46dd26bb4aec26"
    assert _digest(*small_test[:4]) == "8e61afeb63b0599a"


# --- logit_2z -----------------------------------------------------------------------------------------------


def test_logit_2z_shapes_lattice_and_environments():
    train, test = logit_2z(1, n_per_env=100, grid=10, dim_inv=3, dim_spu=4)
    assert train.x.shape == (200, 7) and train.x.dtype == np.float32
    assert train.z.shape == (200, 2) and train.z.dtype == np.float32
    assert test.x.shape == (400, 7) and test.z.shape == (400, 2)
    assert (train.num_envs, test.num_envs) == (2, 4)
    np.testing.assert_array_equal(np.bincount(train.envs), [100, 100])
    np.testing.assert_array_equal(np.bincount(test.envs), [100] * 4)
    lattice = {(i, j) for i in range(10) for j in range(10)}
    for data in (train, test):
        for e in range(data.num_envs):
            z = data.z[data.envs == e].astype(int)
            offset = np.array([(e % 2) * 10, (e // 2) * 10])
            assert {tuple(p) for p in z - offset} == lattice  # every lattice point exactly once
            assert len(z) == 100
        # The environment is recoverable from z; the two training environments sit side by side on axis 0.
        z = data.z.astype(int)
        np.testing.assert_array_equal(2 * (z[:, 1] // 10) + z[:, 0] // 10, data.envs)
    assert train.z[train.envs == 0, 0].max() < 10 <= train.z[train.envs == 1, 0].min()
    assert train.z[:, 1].max() < 10


def test_logit_2z_default_is_zins_50x50_grid():
    train, test = logit_2z(0)
    assert train.x.shape == (5000, 10) and test.x.shape == (10000, 10)
    np.testing.assert_array_equal(train.z[:3], [[0, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(train.z[50], [0, 1])
    np.testing.assert_array_equal(train.z[2500], [50, 0])
    np.testing.assert_array_equal(test.z[-1], [99, 99])


def test_logit_2z_draws_x_and_y_like_logit_z():
    train2, test2 = logit_2z(5, n_per_env=16, grid=4)
    train1, test1 = logit_z(5, n_train=32, n_test=64)
    for a, b in ((train2, train1), (test2, test1)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.envs, b.envs)


def test_logit_2z_seeded():
    a, _ = logit_2z(7, n_per_env=25, grid=5)
    b, _ = logit_2z(7, n_per_env=25, grid=5)
    c, _ = logit_2z(8, n_per_env=25, grid=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_logit_2z_agreement_rates():
    # With 50-dimensional blocks the sign of a block's mean recovers its ±1 mean (overlap ~ Φ(−√50) ≈ 0).
    train, test = logit_2z(0, noise_ratio=0.2, dim_inv=50, dim_spu=50)
    n = 2500
    for data, p_s in ((train, (0.999, 0.7)), (test, (0.999, 0.8, 0.2, 0.001))):
        for e, p in enumerate(p_s):
            m = data.envs == e
            sign_y = 2 * data.y[m] - 1
            spu = np.mean(np.sign(data.x[m, 50:].mean(1)) == sign_y)
            inv = np.mean(np.sign(data.x[m, :50].mean(1)) == sign_y)
            assert abs(spu - p) <= 5 * np.sqrt(p * (1 - p) / n) + 2e-3
            assert abs(inv - 0.8) <= 5 * np.sqrt(0.8 * 0.2 / n)
            assert abs(data.y[m].mean() - 0.5) <= 5 * np.sqrt(0.25 / n)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_per_env": 100}, "n_per_env"),
        ({"grid": 0, "n_per_env": 0}, "grid"),
        ({"p_s_train": (0.5, 1.2)}, "p_s_train"),
        ({"p_s_test": ()}, "p_s_test"),
        ({"noise_ratio": -0.1}, "noise_ratio"),
        ({"dim_inv": 0}, "dim_inv"),
        ({"dim_spu": -1}, "dim_spu"),
    ],
)
def test_logit_2z_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        logit_2z(0, **kwargs)


# --- irm_sem ------------------------------------------------------------------------------------------------

SIGMAS = (0.2, 2.0, 5.0)


def _lstsq(x, y):
    return np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)[0]


def _lstsq_rounding_bound(x, y):
    """How far the float64 least squares of float32-stored (x, y) can lie from that of the exact float64
    data, to first order: every entry is off by ≤ eps32/2 relative, so ‖δX‖ ≤ eps32/2·‖X‖_F and
    ‖δy‖ ≤ eps32/2·‖y‖, and ‖δβ‖ ≤ ‖X⁺‖(‖δy‖ + ‖δX‖‖β‖) + ‖X⁺‖²‖δX‖‖r‖."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    beta = _lstsq(x, y)
    pinv = 1.0 / np.linalg.svd(x64, compute_uv=False)[-1]
    dx, dy = EPS32 / 2 * np.linalg.norm(x64), EPS32 / 2 * np.linalg.norm(y64)
    resid = np.linalg.norm(y64 - x64 @ beta)
    return pinv * (dy + dx * np.linalg.norm(beta)) + pinv**2 * dx * resid


def test_irm_sem_shapes_and_environments():
    train, test = irm_sem(2, n_per_env=30, n_per_env_test=20, dim=3, variant="POS")
    assert train.x.shape == (90, 6) and train.x.dtype == np.float32
    assert train.y.shape == (90,) and train.y.dtype == np.float32
    assert train.z.shape == (90, 1) and test.x.shape == (40, 6)
    assert (train.num_envs, test.num_envs) == (3, 2)
    np.testing.assert_array_equal(np.bincount(train.envs), [30] * 3)
    np.testing.assert_array_equal(np.bincount(test.envs), [20] * 2)
    for data, sigmas in ((train, SIGMAS), (test, (0.1, 10.0))):
        np.testing.assert_allclose(data.z[:, 0], np.asarray(sigmas, np.float32)[data.envs])


def test_irm_sem_seeded_and_truth_independent_of_sizes():
    a, _ = irm_sem(3, n_per_env=50, variant="FES")
    b, _ = irm_sem(3, n_per_env=50, variant="FES")
    c, _ = irm_sem(4, n_per_env=50, variant="FES")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    t = irm_sem_truth(3, variant="FES")
    np.testing.assert_allclose(t.scramble @ t.coef, t.coef_z, atol=1e-12)
    np.testing.assert_array_equal(t.coef_z, [1.0] * 5 + [0.0] * 5)


@pytest.mark.parametrize("variant", ["FOU", "FEU"])
def test_true_coefficients_are_invariant_and_least_squares_is_not(variant):
    n, dim = 4000, 5
    train, _ = irm_sem(0, n_per_env=n, dim=dim, variant=variant)
    truth = irm_sem_truth(0, dim=dim, variant=variant)
    resid = train.y - train.x @ truth.coef
    for e, sigma in enumerate(SIGMAS):
        m = train.envs == e
        # E[target | X] is the causal linear function in every environment: the residual is pure Y-noise,
        # uncorrelated with the Z1 block, of variance dim (homoskedastic) or dim·σ² (heteroskedastic).
        expected = dim * (sigma**2 if variant == "FEU" else 1.0)
        assert abs(resid[m].var() / expected - 1) < 6 * np.sqrt(2 / n)
        assert np.all(
            np.abs(train.x[m, :dim].T @ resid[m] / n) < 6 * np.sqrt(expected) * sigma * np.sqrt(2 / n)
        )
        # Regressing within one environment recovers the same Z1 coefficients for the causal parents only.
        np.testing.assert_allclose(_lstsq(train.x[m, :dim], train.y[m]), 1.0, atol=0.15 / min(sigma, 1.0))
    # Pooled least squares on X leans on the effects Z2 of Y: the spurious solution the paper's ERM finds.
    beta = _lstsq(train.x, train.y)
    causal, noncausal = sem_errors(beta, truth)
    assert beta[dim:].mean() > 0.05 and noncausal > 2e-3 and causal > 2e-3
    assert sem_errors(truth.coef, truth) == (0.0, 0.0)


def test_scrambling_is_an_orthogonal_change_of_basis():
    plain, plain_test = irm_sem(5, n_per_env=200, variant="FOU")
    scr, scr_test = irm_sem(5, n_per_env=200, variant="FOS")
    s = irm_sem_truth(5, variant="FOS").scramble
    np.testing.assert_allclose(s.T @ s, np.eye(10), atol=1e-12)
    assert not np.allclose(s, np.eye(10))
    for a, b in ((plain, scr), (plain_test, scr_test)):
        # b.x: float64 Z·S stored as float32; a.x @ S in float32 from stored Z and S: 10-term sums of
        # once-rounded factors, ≤ 4·(10 + 3)·eps32·(|a.x| @ |S|)
        assert_within(b.x, a.x @ s.astype(np.float32), f32_tol(10 + 3, np.abs(a.x) @ np.abs(s)))
        # S is orthogonal (to 1e-15): two float32 norms of once-rounded rows, 10 squares each
        np.testing.assert_allclose(
            np.linalg.norm(b.x, axis=1), np.linalg.norm(a.x, axis=1), rtol=f32_tol(10 + 2)
        )
        np.testing.assert_array_equal(a.y, b.y)
    # Scoring happens in the unscrambled coordinates, so the same fit scores the same in both bases.
    t_plain, t_scr = irm_sem_truth(5, variant="FOU"), irm_sem_truth(5, variant="FOS")
    e_plain = sem_errors(_lstsq(plain.x, plain.y), t_plain)
    e_scr = sem_errors(_lstsq(scr.x, scr.y), t_scr)
    # the two fits differ only through float32 storage: ‖δβ‖ ≤ B (first order, see _lstsq_rounding_bound,
    # ×4 for the higher orders), and each error, a mean of 5 squares of diff, by ≤ (2‖diff‖B + B²)/5
    bound = 4 * (_lstsq_rounding_bound(plain.x, plain.y) + _lstsq_rounding_bound(scr.x, scr.y))
    diff = t_plain.scramble @ _lstsq(plain.x, plain.y) - t_plain.coef_z
    np.testing.assert_allclose(e_plain, e_scr, rtol=0, atol=(2 * np.linalg.norm(diff) * bound + bound**2) / 5)


def test_heteroskedastic_variant_moves_sigma_from_z2_noise_to_y_noise():
    # Same seed, same standard-normal draws: O has Y-noise ε_y and Z2-noise σ·ε_2, E has σ·ε_y and ε_2.
    homo, _ = irm_sem(6, n_per_env=100, variant="FOU")
    het, _ = irm_sem(6, n_per_env=100, variant="FEU")
    sigma = homo.z[:, 0].astype(np.float64)
    z1 = homo.x[:, :5].astype(np.float64)
    np.testing.assert_array_equal(homo.x[:, :5], het.x[:, :5])  # causes Z1 untouched
    y_noise_homo = homo.y - z1.sum(1)  # Σ ε_y (W_{1→y} = I)
    y_noise_het = het.y - z1.sum(1)  # σ·Σ ε_y
    # y and Z1 were computed in float64 and stored as float32 (eps32/2 relative each): the noises are off by
    # ≤ eps32/2·(|y| + Σ|Z1|), the homoskedastic one σ times so
    size = np.abs(z1).sum(1)
    tol = f32_tol(1, np.abs(het.y) + size + sigma * (np.abs(homo.y) + size))
    assert_within(y_noise_het, sigma * y_noise_homo, tol)
    # Σ_j (Z2 − Z1)_j = Σ ε_y-part + Σ Z2-noise: after removing the Y-noise, O's Z2-noise is σ times E's.
    z2_noise_homo = (homo.x[:, 5:] - homo.x[:, :5]).sum(1) - y_noise_homo
    z2_noise_het = (het.x[:, 5:] - het.x[:, :5]).sum(1) - y_noise_het
    # the same rounding of every stored term: ≤ eps32/2·(Σ|Z2| + 2Σ|Z1| + |y|) for each side, σ times for E
    sizes = [np.abs(d.x).sum(1) + np.abs(d.x[:, :5]).sum(1) + np.abs(d.y) for d in (homo, het)]
    assert_within(z2_noise_homo, sigma * z2_noise_het, f32_tol(1, sizes[0] + sigma * sizes[1]))


def test_partially_observed_variant_adds_hidden_confounding():
    full, _ = irm_sem(7, n_per_env=50, variant="FOU")
    part, _ = irm_sem(7, n_per_env=50, variant="POU")
    assert not np.allclose(full.x, part.x)
    np.testing.assert_array_equal(irm_sem_truth(7, variant="FOU").coef, irm_sem_truth(7, variant="POU").coef)


def test_gaussian_weights():
    truth = irm_sem_truth(8, dim=4, weights="gaussian")
    assert np.all(truth.coef_z[:4] != 0) and np.all(truth.coef_z[4:] == 0)
    train, _ = irm_sem(8, n_per_env=3000, dim=4, weights="gaussian", variant="FOU")
    resid = train.y - train.x @ truth.coef
    for e in range(3):
        assert abs(resid[train.envs == e].var() / 4 - 1) < 6 * np.sqrt(2 / 3000)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variant": "FOX"}, "variant"),
        ({"variant": "fou"}, "variant"),
        ({"weights": "uniform"}, "weights"),
        ({"dim": 0}, "dim"),
        ({"n_per_env": 0}, "n_per_env"),
        ({"n_per_env_test": 0}, "n_per_env_test"),
        ({"sigmas_train": ()}, "sigmas_train"),
        ({"sigmas_train": (1.0, -2.0)}, "sigmas_train"),
        ({"sigmas_test": (float("nan"),)}, "sigmas_test"),
    ],
)
def test_irm_sem_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        irm_sem(0, **kwargs)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: logit_z(0, p_s_train=(0.5, 1.2)), ValueError, r"p_s_train\[1\] .*\[0, 1\], got 1\.2"),
        (lambda: logit_z(0, p_s_train=0.5), TypeError, r"p_s_train must be a sequence"),
        (lambda: logit_z(0, noise_ratio="a"), TypeError, r"noise_ratio must be a label-noise ratio"),
        (lambda: logit_z(0, noise_ratio_train=(0.1, 0.9)), ValueError, r"noise_ratio_train\[1\] .*0\.5"),
        (lambda: logit_2z(0, p_s_test=(0.2, -0.1)), ValueError, r"p_s_test\[1\] .*\[0, 1\]"),
        (lambda: irm_sem(0, sigmas_train=(1.0, -2.0)), ValueError, r"sigmas_train\[1\] must be > 0"),
        (lambda: irm_sem(0, sigmas_test=(float("inf"),)), ValueError, r"sigmas_test\[0\] must be a finite"),
        (lambda: irm_sem(0, sigmas_test=("a",)), TypeError, r"sigmas_test\[0\] must be a noise scale"),
        (lambda: irm_sem(0, variant=3), TypeError, r"variant must be one of .*'FOU'"),
        (lambda: irm_sem(0, weights="uniform"), ValueError, r"weights must be one of .*'gaussian'"),
    ],
)
def test_generators_name_the_bad_element(call, exc, match):
    """Environment lists are checked element by element by the library's one validation layer."""
    with pytest.raises(exc, match=match):
        call()


def test_truth_and_errors_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        irm_sem_truth(0, variant="XYZ")
    with pytest.raises(ValueError, match="coef_hat"):
        sem_errors(np.zeros(3), irm_sem_truth(0))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: logit_z(-1), ValueError, r"seed must be >= 0, got -1"),
        (lambda: logit_z(1.5), TypeError, r"seed must be a non-negative int, got float 1\.5"),
        (lambda: logit_z("0"), TypeError, r"seed must be a non-negative int, got str '0'"),
        (lambda: logit_z(0, n_train=10.5), TypeError, r"n_train must be an int, got float 10\.5"),
        (lambda: logit_z(0, n_test=8.0), TypeError, r"n_test must be an int"),
        (lambda: logit_z(0, dim_inv=2.5), TypeError, r"dim_inv must be an int"),
        (lambda: logit_2z(-3, n_per_env=4, grid=2), ValueError, r"seed must be >= 0"),
        (lambda: logit_2z(0, n_per_env=4.0, grid=2), TypeError, r"n_per_env must be an int"),
        (lambda: irm_sem(-1), ValueError, r"seed must be >= 0"),
        (lambda: irm_sem(0, n_per_env=2.5), TypeError, r"n_per_env must be an int"),
        (lambda: irm_sem_truth(0.5), TypeError, r"seed must be a non-negative int"),
        (lambda: irm_sem_truth(0, dim=2.0), TypeError, r"dim must be an int"),
    ],
)
def test_generators_check_seeds_and_sizes_like_holdout(call, exc, match):
    """The same seed check as `holdout` (not numpy's "expected non-negative integer" / SeedSequence)."""
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert info.match(match)
