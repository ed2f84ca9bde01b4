"""What every dataset returns and the protocol helpers around it: `EnvData`, `env_data`, `holdout` and
`to_batch` (one dataset, or one per seed stacked on a leading axis, as the solvers' `Batch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxirm import _validation as _v
from jaxirm._types import Batch

__all__ = ["EnvData", "env_data", "holdout", "random_split", "to_batch"]


class EnvData(NamedTuple):
    """Examples with their environment labels and auxiliary variable.

    Attributes:
      x: ``[n, d]`` float32 features.
      y: ``[n]`` float32 binary labels in {0, 1} (or real targets for regression data).
      envs: ``[n]`` int32 environment labels in ``[0, num_envs)``.
      z: ``[n, k]`` float32 auxiliary variables for environment inference (e.g. time).
      num_envs: number of environments.
    """

    x: np.ndarray
    y: np.ndarray
    envs: np.ndarray
    z: np.ndarray
    num_envs: int


def random_split(
    rng: np.random.Generator, n: int, fraction: float, *, what: str, name: str, sides: tuple[str, str]
) -> np.ndarray:
    """A ``[n]`` bool mask choosing ``round(fraction · n)`` of ``n`` rows at random (``rng.permutation(n)``).

    Raises a `ValueError` naming ``what`` (e.g. "environment 1") and the argument ``name`` (the fraction)
    when one of the two ``sides`` (chosen, rest: their names in the message) would get no row.
    """
    k = int(math.floor(fraction * n + 0.5))
    if k < 1 or k > n - 1:
        raise ValueError(
            f"{what} has {n} rows: {name} {fraction} leaves {k} {sides[0]} and {n - k} {sides[1]}; each "
            "side needs at least one row"
        )
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[:k]] = True
    return mask


def holdout(data: EnvData, fraction: float, seed: int) -> tuple[EnvData, EnvData]:
    """Holds out a seeded fraction of every environment's rows (training-environment validation).

    For "train-val" model selection (DomainBed's training-domain validation): each environment's rows are
    split at random into a kept part and a held-out part of ``round(fraction · n_e)`` rows, so both parts keep
    every environment and its proportions. Rows keep their original order within each part; ``num_envs`` is
    unchanged. Environments with no rows stay empty on both sides.

    Args:
      data: the `EnvData` to split (x ``[n, d]``, y ``[n]``, envs ``[n]``, z ``[n, k]``).
      fraction: the held-out fraction, strictly between 0 and 1.
      seed: seed of the numpy generator (the split is a function of it).

    Returns:
      ``(rest, held_out)``, two `EnvData` whose rows partition ``data``'s rows.

    Raises:
      TypeError: ``data`` is not an `EnvData`, or ``fraction``/``seed`` have the wrong type.
      ValueError: ``fraction`` outside (0, 1), ``envs`` outside ``[0, num_envs)``, or an environment that
        would keep no row on one side (too few rows for this fraction).

    Examples:
      >>> import numpy as np
      >>> from jaxirm.datasets import logit_z
      >>> train, _ = logit_z(0, n_train=100, n_test=8)
      >>> rest, val = holdout(train, 0.2, seed=0)
      >>> rest.x.shape, val.x.shape, np.bincount(val.envs).tolist()
      ((80, 10), (20, 10), [10, 10])
    """
    if not isinstance(data, EnvData):
        raise TypeError(f"data must be an EnvData, got {type(data).__name__}")
    fraction = _v.check_fraction("fraction", fraction)
    seed = _v.check_seed(seed)
    envs = np.asarray(data.envs)
    if envs.ndim != 1 or envs.shape[0] != np.asarray(data.x).shape[0]:
        raise ValueError(f"data.envs must have shape [n] matching data.x, got {envs.shape}")
    if envs.size and (envs.min() < 0 or envs.max() >= data.num_envs):
        raise ValueError(f"data.envs must lie in [0, num_envs) = [0, {data.num_envs})")
    rng = np.random.default_rng(seed)
    held = np.zeros(envs.shape[0], dtype=bool)
    for e in range(data.num_envs):
        rows = np.flatnonzero(envs == e)
        if rows.size == 0:
            continue
        held[rows] = random_split(
            rng, rows.size, fraction, what=f"environment {e}", name="fraction", sides=("held-out", "kept")
        )

    def take(mask: np.ndarray) -> EnvData:
        return EnvData(
            x=np.asarray(data.x)[mask],
            y=np.asarray(data.y)[mask],
            envs=envs[mask],
            z=np.asarray(data.z)[mask],
            num_envs=data.num_envs,
        )

    return take(~held), take(held)


def env_data(x: np.ndarray, y: np.ndarray, envs: np.ndarray, z: np.ndarray, num_envs: int) -> EnvData:
    """An `EnvData` with the documented dtypes (float32 x/y/z, int32 envs, 2-D z)."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 1:
        z = z[:, None]
    return EnvData(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.float32).reshape(-1),
        envs=np.ascontiguousarray(envs, dtype=np.int32).reshape(-1),
        z=np.ascontiguousarray(z),
        num_envs=int(num_envs),
    )


def to_batch(data: EnvData | Sequence[EnvData], *, with_z: bool = True) -> Batch:
    """The solvers' `Batch` of one dataset, or of one dataset per seed stacked on a leading axis.

    Args:
      data: an `EnvData` (x ``[n, d]``, y ``[n]``, envs ``[n]``, z ``[n, k]``), or a non-empty sequence of
        them with equal shapes (e.g. one per seed, for `jaxirm.sweep(..., data_per_seed=True)`).
      with_z: keep the auxiliary variable z (solvers that infer environments need it); else ``z=None``.

    Returns:
      A `Batch` of numpy arrays: ``x [n, d]`` … or, for a sequence of S datasets, ``x [S, n, d]``,
      ``y [S, n]``, ``envs [S, n]``, ``z [S, n, k]``.

    Raises:
      TypeError: ``data`` is neither an `EnvData` nor a sequence of them.
      ValueError: an empty sequence, or datasets whose shapes differ.

    Examples:
      >>> from jaxirm.datasets import logit_z, to_batch
      >>> parts = [logit_z(seed, n_train=40, n_test=8)[0] for seed in range(3)]
      >>> to_batch(parts).x.shape, to_batch(parts[0], with_z=False).z
      ((3, 40, 10), None)
    """
    if isinstance(data, EnvData):
        parts, stacked = [data], False
    elif isinstance(data, Sequence) and data and all(isinstance(d, EnvData) for d in data):
        parts, stacked = list(data), True
    elif isinstance(data, Sequence) and not data:
        raise ValueError("data must hold at least one EnvData")
    else:
        raise TypeError(f"data must be an EnvData or a sequence of EnvData, got {type(data).__name__}")
    fields = ("x", "y", "envs", "z") if with_z else ("x", "y", "envs")
    arrays = {}
    for field in fields:
        values = [np.asarray(getattr(d, field)) for d in parts]
        shapes = {v.shape for v in values}
        if len(shapes) > 1:
            raise ValueError(f"data[i].{field} must have one shape for every dataset, got {sorted(shapes)}")
        arrays[field] = np.stack(values) if stacked else values[0]
    return Batch(**arrays)
