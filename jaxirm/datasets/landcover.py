"""Landcover (In-N-Out, Xie et al. 2021) as in ZIN and both IRM-TV papers: train outside Africa, test in it.

Each example is a MODIS time series of 46 time steps × 8 channels (7 MODIS bands and NDVI), the label one of
six land-cover classes, and the auxiliary variable z the location (latitude, longitude). Two file layouts are
read, a pickle or an ``.npz``:

**Flat arrays** (a dict in a pickle, or an ``.npz``): ``data`` ``[N, 46, 8]`` (time-major; ``[N, 8, 46]``,
the channel-major layout of In-N-Out's torch ``CNN1D``, is recognised and transposed), ``targets`` ``[N]``
ints in 0..5, ``lat_lon`` ``[N, 2]`` degrees, and optionally ``is_africa`` or ``region`` ``[N]``: bools, 0/1,
or strings (African where the string is ``"africa"``, case-insensitive). Without either, Africa is In-N-Out's
bounding box (`AFRICA_BOX`) applied to ``lat_lon``.

**The In-N-Out cache** that ZIN's ``data_downloader.sh`` fetches as ``datasets/landcover_data.pkl`` (the
papers' notes call it ``landcover.pkl``): a pickled dict ``{domain: (modis, lat_lon, targets, domain, ...)}``
with ``modis`` ``[n, 7, 46]`` (bands × time), ``lat_lon`` ``[n, 2]`` and ``targets`` ``[n]`` MODIS land-cover
ids 0..16; further tuple entries (ERA5 climate) are ignored. The layout follows In-N-Out's
``innout/datasets/landcover.py`` (``load_data``, ``split_map``), read from its source, not from the file
itself. Its preprocessing is replayed: rows whose MODIS series has a NaN are dropped, NDVI =
(nir − red) / max(nir + red, 1e-8) from bands 0 (red) and 1 (nir) is appended and the first 8 channels are
kept (ZIN's ``x[:, :8, :]``), only the six classes ``TOP_LABELS`` = (0, 2, 5, 8, 9, 12) are kept and
renumbered 0..5 (`LANDCOVER_CLASSES`), and Africa is `AFRICA_BOX`.

A pickle can run arbitrary code when it is loaded, so `landcover` reads one only when called with
``allow_pickle=True``; without it only ``.npz`` files (zip archives, read with ``allow_pickle=False``) are
accepted, whatever the file's name.

References:
  Lai & Wang, "Invariant Risk Minimization Is A Total Variation Model", ICML 2024, arXiv:2405.01389
  (Sec. 4.2, the Landcover experiment).

  Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
  Minimization", ICLR 2025, arXiv:2502.19665 (Table 3, Landcover).

  Xie et al., "In-N-Out: Pre-Training and Self-Training using Auxiliary Information for
  Out-of-Distribution Robustness", ICLR 2021 (the data and ``innout/datasets/landcover.py``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData
from jaxirm.datasets._io import is_zip, standardize

__all__ = [
    "AFRICA_BOX",
    "LANDCOVER_CHANNELS",
    "LANDCOVER_CLASSES",
    "LANDCOVER_STEPS",
    "landcover",
]

LANDCOVER_STEPS = 46
"""Time steps of a Landcover series (one MODIS composite every 8 days over a year)."""

LANDCOVER_CHANNELS = 8
"""Channels of a Landcover series: 7 MODIS bands and NDVI."""

LANDCOVER_CLASSES = (
    "savannas",
    "woody_savannas",
    "croplands",
    "open_shrublands",
    "evergreen_broadleaf_forests",
    "grasslands",
)
"""The six classes, in label order (In-N-Out's ``TOP_LABELS`` 0, 2, 5, 8, 9, 12 of its 17 MODIS classes)."""

AFRICA_BOX = (-36.337048, 38.277609, -18.170184, 55.037262)
"""In-N-Out's Africa bounding box: (lat_min, lat_max, lon_min, lon_max) in degrees, bounds included.

A rectangle, so it also covers southern Spain, Sicily, the Levant and the Arabian peninsula; it is the
reference code's definition of "African" samples and is kept as is.
"""

_TOP_LABELS = (0, 2, 5, 8, 9, 12)
_FLAT_KEYS = ("data", "targets", "lat_lon")


def _in_africa(lat_lon: np.ndarray) -> np.ndarray:
    lat_min, lat_max, lon_min, lon_max = AFRICA_BOX
    lat, lon = lat_lon[:, 0], lat_lon[:, 1]
    return (lat >= lat_min) & (lat <= lat_max) & (lon >= lon_min) & (lon <= lon_max)


def _load(path: Path, allow_pickle: bool) -> object:
    if is_zip(path):
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    if not allow_pickle:
        raise ValueError(
            f"{path} is not an .npz (zip) file; if it is a pickle (e.g. In-N-Out's landcover_data.pkl), "
            "loading it can run arbitrary code: pass allow_pickle=True only for a file you trust, or convert "
            "it to an .npz"
        )
    with open(path, "rb") as fh:
        try:
            return pickle.load(fh)  # documented: trusted files only
        except Exception as err:  # pickle raises many types on foreign content
            raise ValueError(f"{path}: neither an .npz nor a readable pickle ({err})") from err


def _africa_flags(flags: np.ndarray, path: Path, key: str) -> np.ndarray:
    if flags.dtype.kind in "USO":
        return np.char.lower(flags.astype(str)) == "africa"
    if flags.dtype == bool or (np.issubdtype(flags.dtype, np.integer) and np.isin(flags, (0, 1)).all()):
        return flags.astype(bool)
    raise ValueError(f"{path}: key {key!r} must hold bools, 0/1 or region names ('africa' marks Africa)")


def _flat(obj: dict, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    for key in _FLAT_KEYS:
        if key not in obj:
            raise ValueError(f"{path}: missing key {key!r} (a landcover file holds data, targets, lat_lon)")
    data = np.asarray(obj["data"])
    if data.ndim == 3 and data.shape[1:] == (LANDCOVER_CHANNELS, LANDCOVER_STEPS):
        data = data.transpose(0, 2, 1)
    if data.ndim != 3 or data.shape[1:] != (LANDCOVER_STEPS, LANDCOVER_CHANNELS):
        raise ValueError(f"{path}: key 'data' must have shape [N, 46, 8] or [N, 8, 46], got {data.shape}")
    n = data.shape[0]
    targets = np.asarray(obj["targets"]).reshape(-1)
    lat_lon = np.asarray(obj["lat_lon"], dtype=np.float64)
    if lat_lon.shape != (n, 2):
        raise ValueError(f"{path}: key 'lat_lon' must have shape [{n}, 2], got {lat_lon.shape}")
    if targets.shape[0] != n:
        raise ValueError(f"{path}: key 'targets' has {targets.shape[0]} entries, 'data' has {n}")
    if not np.issubdtype(targets.dtype, np.integer) or (n and (targets.min() < 0 or targets.max() > 5)):
        raise ValueError(f"{path}: key 'targets' must hold integer classes 0..5")
    key = next((k for k in ("is_africa", "region") if k in obj), None)
    if key is None:
        africa, key = _in_africa(lat_lon), "lat_lon"
    else:
        africa = _africa_flags(np.asarray(obj[key]).reshape(-1), path, key)
    if africa.shape[0] != n:
        raise ValueError(f"{path}: key {key!r} has {africa.shape[0]} entries, 'data' has {n}")
    return np.asarray(data, dtype=np.float64), targets.astype(np.int32), lat_lon, africa


def _innout_cache(obj: dict, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    datas, lat_lons, targets = [], [], []
    try:
        domains = sorted(obj)
    except TypeError:
        domains = sorted(obj, key=repr)
    for domain in domains:
        entry = obj[domain]
        if len(entry) < 3:
            raise ValueError(f"{path}: domain {domain!r} must map to a tuple (modis, lat_lon, targets, ...)")
        modis = np.asarray(entry[0], dtype=np.float64)
        ll = np.asarray(entry[1], dtype=np.float64)
        t = np.asarray(entry[2]).reshape(-1)
        n = t.shape[0]
        if modis.ndim != 3 or modis.shape[0] != n or modis.shape[2] != LANDCOVER_STEPS or modis.shape[1] < 2:
            raise ValueError(
                f"{path}: domain {domain!r}: MODIS series must be [n, bands, 46], got {modis.shape}"
            )
        if ll.shape != (n, 2):
            raise ValueError(f"{path}: domain {domain!r}: lat_lon must be [{n}, 2], got {ll.shape}")
        keep = ~np.isnan(modis).any(axis=(1, 2))
        modis, ll, t = modis[keep], ll[keep], t[keep]
        red, nir = modis[:, 0, :], modis[:, 1, :]
        ndvi = (nir - red) / np.maximum(nir + red, 1e-8)
        series = np.concatenate([modis, ndvi[:, None, :]], axis=1)[:, :LANDCOVER_CHANNELS]
        if series.shape[1] != LANDCOVER_CHANNELS:
            raise ValueError(f"{path}: domain {domain!r}: need at least 7 MODIS bands, got {modis.shape[1]}")
        datas.append(series.transpose(0, 2, 1))
        lat_lons.append(ll)
        targets.append(t)
    data, lat_lon, raw = np.concatenate(datas), np.concatenate(lat_lons), np.concatenate(targets)
    top = np.isin(raw, _TOP_LABELS)
    data, lat_lon, raw = data[top], lat_lon[top], raw[top]
    y = np.searchsorted(np.asarray(_TOP_LABELS), raw).astype(np.int32)
    return data, y, lat_lon, _in_africa(lat_lon)


def landcover(
    path: str | os.PathLike[str], *, seed: int = 0, allow_pickle: bool = False
) -> tuple[EnvData, EnvData]:
    """Landcover split as in ZIN / IRM-TV: train on non-African samples, test on African ones.

    Protocol implemented here (differences from the reference code noted):

    * train = every non-African sample, test = every African sample ("test on Africa"). ZIN trains on
      In-N-Out's ``nonafrica-train`` split, a seeded subset of the non-African data (the rest goes to
      In-N-Out's validation, in-distribution test and unlabeled pools), and tests on its ``africa`` split;
      the IRM-TV paper also mentions held-out non-African regions. Those pools are not reproduced.
    * training environments: the released code has no ground truth and draws a fresh random 50/50 split
      of every batch (``random_zero_one``); here one fixed random 50/50 split of the training set, seeded
      by ``seed`` (⌊n/2⌋ examples in environment 0, the rest in 1), so the environments are the same at
      every step. The test set is a single environment.
    * x: the series standardised per channel with the training set's mean and standard deviation over
      examples and time, then flattened time-major: ``x.reshape(n, 46, 8)`` is ``[time, channel]``, the
      layout of ``flax.linen.Conv`` (NWC); In-N-Out's torch ``CNN1D`` wants ``x.reshape(n, 46, 8)
      .transpose(0, 2, 1)``. In-N-Out standardises with the statistics of its training plus unlabeled
      pools.
    * z: latitude and longitude standardised with the training statistics (ZIN passes raw degrees).
    * y: int32 class labels 0..5 (`LANDCOVER_CLASSES`), for ``softmax_cross_entropy``.
    * rows whose series or location is not finite are dropped (In-N-Out's ``filter_nans``).

    Args:
      path: an ``.npz`` (or, with ``allow_pickle``, a pickle) in one of the two layouts of the module
        docstring.
      seed: seed of the numpy generator that draws the training-environment split.
      allow_pickle: also read a file that is not an ``.npz`` as a pickle. Off by default because unpickling
        runs whatever code the file holds: a pickle named ``.npz`` would otherwise execute its payload.
        Set it only for files you trust, such as In-N-Out's ``landcover_data.pkl``.

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, 368]`` float32, y ``[n]`` int32 in 0..5, envs ``[n]`` int32
      (training: 0/1, test: 0), z ``[n, 2]`` float32, ``num_envs`` 2 and 1.

    Raises:
      TypeError: ``path`` is not a path, ``seed`` not an int or ``allow_pickle`` not a bool.
      FileNotFoundError: ``path`` does not exist (the message names it).
      ValueError: a required key is missing or has the wrong shape or values (the message names the file
        and the key), the file is neither layout, it is not an ``.npz`` and ``allow_pickle`` is False, or
        one side of the split is empty.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> path = os.path.join(tempfile.mkdtemp(), "landcover.npz")
      >>> lat_lon = np.array([[48.0, 2.0], [40.0, -100.0], [-1.0, 36.0], [50.0, 10.0], [10.0, 20.0]])
      >>> np.savez(path, data=rng.normal(size=(5, 46, 8)), targets=[0, 1, 2, 3, 4], lat_lon=lat_lon)
      >>> train, test = landcover(path)
      >>> train.x.shape, train.z.shape, train.num_envs, test.x.shape, test.num_envs
      ((3, 368), (3, 2), 2, (2, 368), 1)
      >>> test.y.tolist()  # Kenya and Chad are inside the Africa box
      [2, 4]
    """
    path = _v.check_path("path", path)
    seed = _v.check_seed(seed)
    if not isinstance(allow_pickle, bool):
        raise TypeError(f"allow_pickle must be a bool, got {type(allow_pickle).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"landcover file not found: {path}")
    obj = _load(path, allow_pickle)
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path}: expected a dict of arrays (keys data, targets, lat_lon), got {type(obj).__name__}"
        )
    if obj and all(isinstance(v, (tuple, list)) for v in obj.values()):
        data, y, lat_lon, africa = _innout_cache(obj, path)
    else:
        data, y, lat_lon, africa = _flat(obj, path)
    finite = np.isfinite(data).all(axis=(1, 2)) & np.isfinite(lat_lon).all(axis=1)
    data, y, lat_lon, africa = data[finite], y[finite], lat_lon[finite], africa[finite]
    if not (~africa).any():
        raise ValueError(f"{path}: no non-African sample to train on")
    if not africa.any():
        raise ValueError(f"{path}: no African sample to test on")

    x_tr, x_te = standardize(data[~africa], data[africa], axis=(0, 1))
    z_tr, z_te = standardize(lat_lon[~africa], lat_lon[africa])
    n_tr, n_te = x_tr.shape[0], x_te.shape[0]
    envs = np.ones(n_tr, dtype=np.int32)
    envs[np.random.default_rng(seed).permutation(n_tr)[: n_tr // 2]] = 0
    train = EnvData(
        x=x_tr.reshape(n_tr, -1).astype(np.float32),
        y=y[~africa],
        envs=envs,
        z=z_tr.astype(np.float32),
        num_envs=2,
    )
    test = EnvData(
        x=x_te.reshape(n_te, -1).astype(np.float32),
        y=y[africa],
        envs=np.zeros(n_te, dtype=np.int32),
        z=z_te.astype(np.float32),
        num_envs=1,
    )
    return train, test
