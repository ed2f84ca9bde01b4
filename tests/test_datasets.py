"""The embedded logit_z simulation follows its data-generating process; `to_batch` packs datasets."""

import numpy as np
import pytest

from jaxirm._types import Batch
from jaxirm.datasets import invariant_ceiling, logit_z, to_batch


def test_shapes_dtypes_and_environments():
    train, test = logit_z(3, n_train=1000, n_test=800, dim_inv=3, dim_spu=4)
    assert train.x.shape == (1000, 7) and train.x.dtype == np.float32
    assert test.x.shape == (800, 7)
    assert train.num_envs == 2 and test.num_envs == 4
    np.testing.assert_array_equal(np.bincount(train.envs), [500, 500])
    np.testing.assert_array_equal(np.bincount(test.envs), [200] * 4)
    np.testing.assert_array_equal(train.z[:, 0], np.arange(1000))
    assert set(np.unique(train.y)) <= {0.0, 1.0}


def test_seeded():
    a, _ = logit_z(7, n_train=200, n_test=40)
    b, _ = logit_z(7, n_train=200, n_test=40)
    c, _ = logit_z(8, n_train=200, n_test=40)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_spurious_and_invariant_agreement_rates():
    # P(m_s = 2y - 1) = p_s per environment and P(m_v = 2y - 1) = 1 - noise_ratio: with 1-D blocks and a
    # large n, the sign of the feature mean recovers those rates up to the Gaussian overlap.
    train, test = logit_z(0, n_train=40_000, n_test=40_000, noise_ratio=0.2, dim_inv=50, dim_spu=50)
    for data, p_s in ((train, (0.999, 0.7)), (test, (0.999, 0.8, 0.2, 0.001))):
        for e, p in enumerate(p_s):
            m = data.envs == e
            sign_y = 2 * data.y[m] - 1
            spu = np.sign(data.x[m, 50:].mean(1)) == sign_y
            inv = np.sign(data.x[m, :50].mean(1)) == sign_y
            assert abs(spu.mean() - p) < 0.02
            assert abs(inv.mean() - 0.8) < 0.02


def test_invariant_predictor_reaches_the_ceiling_in_every_test_env():
    _, test = logit_z(1, n_test=40_000)
    pred = test.x[:, :5].sum(1) > 0
    for e in range(4):
        m = test.envs == e
        assert abs(np.mean(pred[m] == test.y[m]) - invariant_ceiling(0.1, 5)) < 0.01


def test_ceiling_values():
    assert invariant_ceiling(0.1, 5) == pytest.approx(0.8899, abs=1e-4)
    assert invariant_ceiling(0.2, 5) == pytest.approx(0.7924, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"p_s_train": (0.5, 1.2)}, "p_s_train"),
        ({"p_s_test": ()}, "p_s_test"),
        ({"noise_ratio": 0.7}, "noise_ratio"),
        ({"dim_inv": 0}, "dim_inv"),
        ({"n_train": 1}, "n_train"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        logit_z(0, **kwargs)


def test_per_environment_training_noise():
    train, test = logit_z(
        0,
        n_train=60_000,
        n_test=40,
        p_s_train=(0.9, 0.9, 0.9),
        noise_ratio_train=(0.0, 0.1, 0.45),
        dim_inv=50,
    )
    for e, eta in enumerate((0.0, 0.1, 0.45)):
        m = train.envs == e
        agree = np.sign(train.x[m, :50].mean(1)) == 2 * train.y[m] - 1
        assert abs(agree.mean() - (1 - eta)) < 0.02
    with pytest.raises(ValueError, match="noise_ratio_train"):
        logit_z(0, noise_ratio_train=(0.1,))
    # The default draws are unchanged by the option.
    a, _ = logit_z(5, n_train=100, n_test=40)
    b, _ = logit_z(5, n_train=100, n_test=40, noise_ratio_train=(0.1, 0.1))
    np.testing.assert_array_equal(a.x, b.x)


# --- to_batch -----------------------------------------------------------------------------------------------


def test_to_batch_of_one_dataset_keeps_the_arrays():
    train, _ = logit_z(0, n_train=40, n_test=8)
    batch = to_batch(train)
    assert isinstance(batch, Batch)
    for field in ("x", "y", "envs", "z"):
        np.testing.assert_array_equal(getattr(batch, field), getattr(train, field))
    assert batch.x.shape == (40, 10) and batch.z.shape == (40, 1)


def test_to_batch_stacks_one_dataset_per_seed():
    parts = [logit_z(seed, n_train=40, n_test=8)[0] for seed in range(3)]
    batch = to_batch(parts)
    assert (batch.x.shape, batch.y.shape, batch.envs.shape, batch.z.shape) == (
        (3, 40, 10),
        (3, 40),
        (3, 40),
        (3, 40, 1),
    )
    for s, part in enumerate(parts):
        np.testing.assert_array_equal(batch.x[s], part.x)
        np.testing.assert_array_equal(batch.envs[s], part.envs)
    assert to_batch(tuple(parts)).x.shape == (3, 40, 10)  # any sequence of EnvData
    assert to_batch(parts[:1]).x.shape == (1, 40, 10)  # a sequence of one still stacks


def test_to_batch_without_z():
    train, _ = logit_z(0, n_train=40, n_test=8)
    assert to_batch(train, with_z=False).z is None
    stacked = to_batch([train, train], with_z=False)
    assert stacked.z is None and stacked.x.shape == (2, 40, 10)
    # z is not compared when it is dropped: datasets whose z differ in width still stack
    wide = train._replace(z=np.zeros((40, 3), dtype=np.float32))
    assert to_batch([train, wide], with_z=False).x.shape == (2, 40, 10)


def test_to_batch_shape_mismatch_names_the_field():
    a, _ = logit_z(0, n_train=40, n_test=8)
    b, _ = logit_z(1, n_train=60, n_test=8)
    with pytest.raises(ValueError, match=r"data\[i\]\.x must have one shape"):
        to_batch([a, b])
    wide = a._replace(z=np.zeros((40, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"data\[i\]\.z must have one shape"):
        to_batch([a, wide])
    with pytest.raises(ValueError, match="at least one EnvData"):
        to_batch([])


@pytest.mark.parametrize(
    "data",
    [
        None,
        42,
        "train",
        {"x": np.zeros((2, 3))},
        (np.zeros((4, 2)), np.zeros(4)),  # a plain tuple of arrays, not an EnvData
        [logit_z(0, n_train=40, n_test=8)[0], "not EnvData"],
    ],
)
def test_to_batch_wrong_type(data):
    with pytest.raises(TypeError, match="data must be an EnvData or a sequence of EnvData"):
        to_batch(data)
