"""Synthetic data-generating processes of the IRM-TV papers (numpy only, seeded, no downloads).

`logit_z` and `logit_2z` are ZIN's simulations, which both papers use; `invariant_ceiling` is the best
accuracy an invariant predictor reaches on them. The IRM paper's linear SEM (`irm_sem`, `irm_sem_truth`,
`sem_errors`, `SEMTruth`) lives in `jaxirm.datasets.sem` and `EnvData` in `jaxirm.datasets`; both are
re-exported here.

References:
  Lai & Wang, "Invariant Risk Minimization Is A Total Variation Model", ICML 2024, arXiv:2405.01389
  (Sec. 4.1, the simulation study).

  Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
  Minimization", ICLR 2025, arXiv:2502.19665 (App. A.3, the simulation's data-generating process).

  Lin et al., "ZIN: When and How to Learn Invariance Without Environment Partition?", NeurIPS 2022
  (the ``logit_z`` / ``logit_2z`` code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData
from jaxirm.datasets.sem import SEMTruth, irm_sem, irm_sem_truth, sem_errors

__all__ = [
    "EnvData",
    "SEMTruth",
    "invariant_ceiling",
    "irm_sem",
    "irm_sem_truth",
    "logit_2z",
    "logit_z",
    "sem_errors",
]

#: The check of a label-noise ratio: a number in [0, 0.5].
_check_noise = partial(_v.check_number, low=0.0, high=0.5, what="a label-noise ratio in [0, 0.5]")


def invariant_ceiling(noise_ratio: float = 0.1, dim_inv: int = 5) -> float:
    """Accuracy of the best invariant predictor of `logit_z`, the same in every test environment.

    Predicting y from the invariant block alone gives (1 − r)·Φ(√d) + r·(1 − Φ(√d)), with r the label-noise
    ratio and d = ``dim_inv``: 0.8899 for r = 0.1 and 0.7924 for r = 0.2 (d = 5).

    Args:
      noise_ratio: label-noise ratio r in [0, 0.5].
      dim_inv: number of invariant features d ≥ 1.

    Returns:
      The ceiling, a float in [0.5, 1].

    Raises:
      ValueError: ``noise_ratio`` outside [0, 0.5] or ``dim_inv`` < 1.
      TypeError: ``noise_ratio`` is not a number or ``dim_inv`` not an int.

    Examples:
      >>> round(invariant_ceiling(0.1, 5), 4)
      0.8899
    """
    noise_ratio = _check_noise("noise_ratio", noise_ratio)
    dim_inv = _v.check_int("dim_inv", dim_inv, 1)
    phi = 0.5 * (1.0 + math.erf(math.sqrt(dim_inv) / math.sqrt(2.0)))
    return (1.0 - noise_ratio) * phi + noise_ratio * (1.0 - phi)


def _check_logit_args(
    p_s_train: Sequence[float], p_s_test: Sequence[float], noise_ratio: float, dim_inv: int, dim_spu: int
) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """The checks `logit_z` and `logit_2z` share; returns the p_s tuples and the noise ratio as floats."""
    p_s_train = _v.check_numbers("p_s_train", p_s_train, what="spurious agreement probabilities")
    p_s_test = _v.check_numbers("p_s_test", p_s_test, what="spurious agreement probabilities")
    _v.check_int("dim_inv", dim_inv, 1)
    _v.check_int("dim_spu", dim_spu, 0)
    return p_s_train, p_s_test, _check_noise("noise_ratio", noise_ratio)


def _logit_envs(
    rng: np.random.Generator,
    n_env: int,
    p_s: tuple[float, ...],
    noise: tuple[float, ...],
    dim_inv: int,
    dim_spu: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws ``n_env`` examples per environment, environments stacked in order: x, y, envs (float32/int32).

    The draw order inside one environment is ZIN's ``CowCamels.sample``: y, invariant-noise flags,
    spurious-noise flags, the invariant Gaussian block, then the spurious one. `logit_z` and `logit_2z` both
    call it, so the same seed and environment sizes give them the same x and y.
    """
    xs, ys, es = [], [], []
    for e, (ps, eta) in enumerate(zip(p_s, noise, strict=True)):
        y = rng.binomial(1, 0.5, n_env)
        inv_noise = rng.binomial(1, eta, n_env)
        spu_noise = rng.binomial(1, 1.0 - ps, n_env)
        m_v = 2.0 * np.abs(y - inv_noise) - 1.0
        m_s = 2.0 * np.abs(y - spu_noise) - 1.0
        x_v = m_v[:, None] + rng.standard_normal((n_env, dim_inv))
        x_s = m_s[:, None] + rng.standard_normal((n_env, dim_spu))
        xs.append(np.concatenate([x_v, x_s], axis=1))
        ys.append(y)
        es.append(np.full(n_env, e))
    return (
        np.concatenate(xs).astype(np.float32),
        np.concatenate(ys).astype(np.float32),
        np.concatenate(es).astype(np.int32),
    )


def _logit_split(
    rng: np.random.Generator,
    n_total: int,
    p_s: tuple[float, ...],
    noise: tuple[float, ...],
    dim_inv: int,
    dim_spu: int,
) -> EnvData:
    x, y, envs = _logit_envs(rng, n_total // len(p_s), p_s, noise, dim_inv, dim_spu)
    return EnvData(x=x, y=y, envs=envs, z=np.arange(len(y), dtype=np.float32)[:, None], num_envs=len(p_s))


def logit_z(
    seed: int = 0,
    *,
    n_train: int = 5000,
    n_test: int = 5000,
    p_s_train: Sequence[float] = (0.999, 0.7),
    p_s_test: Sequence[float] = (0.999, 0.8, 0.2, 0.001),
    noise_ratio: float = 0.1,
    dim_inv: int = 5,
    dim_spu: int = 5,
    noise_ratio_train: Sequence[float] | None = None,
) -> tuple[EnvData, EnvData]:
    """The ZIN "temporal" simulation ``logit_z`` used by both IRM-TV papers.

    Per environment with spurious agreement p_s: y ~ Bernoulli(½); the invariant block is
    x_v = m_v·1 + N(0, I) with m_v = 2y − 1 flipped with probability ``noise_ratio``; the spurious block is
    x_s = m_s·1 + N(0, I) with m_s = 2y − 1 flipped with probability 1 − p_s. Every environment gets
    ``n // len(p_s)`` examples; environments are stacked in order, and z is the row index ("time"), so the
    first training environment occupies the first half of time. The defaults are the authors' IRM-TV-ℓ1
    setting that reproduces the OOD-TV paper's simulation table (train p_s (0.999, 0.7), label noise 0.1,
    5 + 5 dimensions; see the docs' Results page).

    Args:
      seed: seed of the numpy generator (the whole draw is a function of it).
      n_train: total number of training examples.
      n_test: total number of test examples.
      p_s_train: spurious agreement of every training environment.
      p_s_test: spurious agreement of every test environment.
      noise_ratio: label noise r on the invariant block (p_v = 1 − r), in [0, 0.5].
      dim_inv: invariant dimensions d_v ≥ 1.
      dim_spu: spurious dimensions d_s ≥ 0.
      noise_ratio_train: label noise of every *training* environment, to corrupt some of them (default:
        ``noise_ratio`` everywhere); the test environments always use ``noise_ratio``.

    Returns:
      ``(train, test)`` `EnvData` with x ``[n, dim_inv + dim_spu]``, y ``[n]``, envs ``[n]`` and z ``[n, 1]``.

    Raises:
      ValueError: a probability outside [0, 1], ``noise_ratio`` outside [0, 0.5], sizes smaller than the
        number of environments, non-positive dimensions, or a negative ``seed``.
      TypeError: ``seed``, a size or a dimension that is not an int, or a probability or noise ratio that
        is not a number (or an environment list that is not a sequence).

    Examples:
      >>> train, test = logit_z(0, n_train=100, n_test=80)
      >>> train.x.shape, train.num_envs, test.num_envs
      ((100, 10), 2, 4)
    """
    seed = _v.check_seed(seed)
    p_s_train, p_s_test, noise_ratio = _check_logit_args(p_s_train, p_s_test, noise_ratio, dim_inv, dim_spu)
    # at least one example per environment
    n_train = _v.check_int("n_train", n_train, len(p_s_train))
    n_test = _v.check_int("n_test", n_test, len(p_s_test))
    if noise_ratio_train is None:
        noise_train = (noise_ratio,) * len(p_s_train)
    else:
        noise_train = _v.check_numbers(
            "noise_ratio_train", noise_ratio_train, check=_check_noise, what="label-noise ratios"
        )
        if len(noise_train) != len(p_s_train):
            raise ValueError(
                f"noise_ratio_train must give one ratio per training environment ({len(p_s_train)}), "
                f"got {len(noise_train)}"
            )
    rng = np.random.default_rng(seed)
    train = _logit_split(rng, n_train, p_s_train, noise_train, dim_inv, dim_spu)
    test = _logit_split(rng, n_test, p_s_test, (noise_ratio,) * len(p_s_test), dim_inv, dim_spu)
    return train, test


def _lattice_z(num_envs: int, grid: int) -> np.ndarray:
    """``[num_envs·grid², 2]`` float32 lattice points, environments stacked in order.

    Environment e's ``grid × grid`` block sits at tile ``(e % 2, e // 2)``; see `logit_2z`.
    """
    k = np.tile(np.arange(grid * grid), num_envs)
    e = np.repeat(np.arange(num_envs), grid * grid)
    z1 = (e % 2) * grid + k % grid
    z2 = (e // 2) * grid + k // grid
    return np.stack([z1, z2], axis=1).astype(np.float32)


def logit_2z(
    seed: int = 0,
    *,
    n_per_env: int = 2500,
    grid: int = 50,
    p_s_train: Sequence[float] = (0.999, 0.7),
    p_s_test: Sequence[float] = (0.999, 0.8, 0.2, 0.001),
    noise_ratio: float = 0.1,
    dim_inv: int = 5,
    dim_spu: int = 5,
) -> tuple[EnvData, EnvData]:
    """ZIN's ``logit_2z``: the `logit_z` simulation with a 2-D lattice as the auxiliary variable z.

    x and y are drawn exactly as in `logit_z` (the same per-environment process and draw order, ``n_per_env``
    examples per environment, training environments first, then test ones), so
    ``logit_2z(s)`` has the x, y and envs of ``logit_z(s, n_train=2·2500, n_test=4·2500)``. Only z differs:
    within each environment the k-th example (k = 0 … grid² − 1) sits at the lattice point
    ``(k % grid, k // grid)``, and environment e's lattice is shifted to tile ``(e % 2, e // 2)`` of a
    plane two tiles wide:

        z[k] = ((e % 2)·grid + k % grid, (e // 2)·grid + k // grid)

    so the environment is recoverable from z as ``e = 2·(z₂ // grid) + z₁ // grid``. With the default two
    training environments, environment 0 occupies z₁ ∈ [0, grid) and environment 1 z₁ ∈ [grid, 2·grid) (the
    2-D analogue of `logit_z`'s time halves); four test environments tile a 2 × 2 square. z holds raw
    integer coordinates (as float32); ZIN standardises z inside its inference net.

    Known from the ZIN code (``utils_z.py``: ``LOGIT2Z``, ``make_logit_envs_z``, ``concat_envs_2z``): x and
    y come from the same ``make_logit_envs_z`` as ``logit_z``; every environment must hold exactly
    2500 = 50 × 50 examples (asserted there; here ``n_per_env == grid²`` is checked); the lattice formula and
    the 2-wide row-major tiling above. Not known: a training / test p_s configuration for ``logit_2z`` — the
    code ships no command and neither paper reports results (its inference net references a nonexistent
    ``flags.z_dim``, so it does not run as shipped). The defaults here are `logit_z`'s; the grid side ``grid``
    generalises ZIN's fixed 50. The torch RNG stream is not reproduced, only the distribution.

    Args:
      seed: seed of the numpy generator (the whole draw is a function of it).
      n_per_env: examples per environment; must equal ``grid**2``.
      grid: side of each environment's square lattice, ≥ 1.
      p_s_train: spurious agreement of every training environment.
      p_s_test: spurious agreement of every test environment.
      noise_ratio: label noise r on the invariant block (p_v = 1 − r), in [0, 0.5].
      dim_inv: invariant dimensions d_v ≥ 1.
      dim_spu: spurious dimensions d_s ≥ 0.

    Returns:
      ``(train, test)`` `EnvData` with x ``[E·grid², dim_inv + dim_spu]``, y ``[E·grid²]`` in {0, 1},
      envs ``[E·grid²]`` and z ``[E·grid², 2]``, E being the number of environments of the split.

    Raises:
      ValueError: a probability outside [0, 1], ``noise_ratio`` outside [0, 0.5], non-positive dimensions,
        ``grid`` < 1, ``n_per_env`` ≠ ``grid**2``, or a negative ``seed``.
      TypeError: ``seed``, ``n_per_env``, ``grid`` or a dimension that is not an int, or a probability or
        ``noise_ratio`` that is not a number (or an environment list that is not a sequence).

    Examples:
      >>> train, test = logit_2z(0, n_per_env=9, grid=3)
      >>> train.x.shape, train.z.shape, test.z.shape, test.num_envs
      ((18, 10), (18, 2), (36, 2), 4)
      >>> train.z[[0, 1, 3, 9]].tolist()
      [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]]
    """
    seed = _v.check_seed(seed)
    n_per_env, grid = _v.check_int("n_per_env", n_per_env), _v.check_int("grid", grid, 1)
    p_s_train, p_s_test, noise_ratio = _check_logit_args(p_s_train, p_s_test, noise_ratio, dim_inv, dim_spu)
    if n_per_env != grid * grid:
        raise ValueError(
            f"n_per_env must equal grid**2 = {grid * grid} (one lattice point each), got {n_per_env}"
        )
    rng = np.random.default_rng(seed)
    splits = []
    for p_s in (p_s_train, p_s_test):
        x, y, envs = _logit_envs(rng, n_per_env, p_s, (noise_ratio,) * len(p_s), dim_inv, dim_spu)
        splits.append(EnvData(x=x, y=y, envs=envs, z=_lattice_z(len(p_s), grid), num_envs=len(p_s)))
    return splits[0], splits[1]
