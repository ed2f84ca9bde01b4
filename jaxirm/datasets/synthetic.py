"""Synthetic data-generating processes of the IRM-TV papers (numpy only, seeded, no downloads)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["EnvData", "logit_z", "invariant_ceiling"]


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

    Examples:
      >>> round(invariant_ceiling(0.1, 5), 4)
      0.8899
    """
    if not 0.0 <= noise_ratio <= 0.5:
        raise ValueError(f"noise_ratio must lie in [0, 0.5], got {noise_ratio}")
    if dim_inv < 1:
        raise ValueError(f"dim_inv must be >= 1, got {dim_inv}")
    phi = 0.5 * (1.0 + math.erf(math.sqrt(dim_inv) / math.sqrt(2.0)))
    return (1.0 - noise_ratio) * phi + noise_ratio * (1.0 - phi)


def _check_probs(name: str, probs: Sequence[float]) -> tuple[float, ...]:
    probs = tuple(float(p) for p in probs)
    if not probs:
        raise ValueError(f"{name} must list at least one environment's p_s")
    if any(not 0.0 <= p <= 1.0 for p in probs):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got {probs}")
    return probs


def _logit_split(
    rng: np.random.Generator,
    n_total: int,
    p_s: tuple[float, ...],
    noise: tuple[float, ...],
    dim_inv: int,
    dim_spu: int,
) -> EnvData:
    n_env = n_total // len(p_s)
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
    n = n_env * len(p_s)
    return EnvData(
        x=np.concatenate(xs).astype(np.float32),
        y=np.concatenate(ys).astype(np.float32),
        envs=np.concatenate(es).astype(np.int32),
        z=np.arange(n, dtype=np.float32)[:, None],
        num_envs=len(p_s),
    )


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
        number of environments, or non-positive dimensions.

    Examples:
      >>> train, test = logit_z(0, n_train=100, n_test=80)
      >>> train.x.shape, train.num_envs, test.num_envs
      ((100, 10), 2, 4)
    """
    p_s_train = _check_probs("p_s_train", p_s_train)
    p_s_test = _check_probs("p_s_test", p_s_test)
    if not 0.0 <= noise_ratio <= 0.5:
        raise ValueError(f"noise_ratio must lie in [0, 0.5], got {noise_ratio}")
    if dim_inv < 1 or dim_spu < 0:
        raise ValueError(f"dim_inv must be >= 1 and dim_spu >= 0, got {dim_inv} and {dim_spu}")
    if n_train < len(p_s_train) or n_test < len(p_s_test):
        raise ValueError(
            f"n_train and n_test must be at least the number of environments, got {n_train} and {n_test}"
        )
    if noise_ratio_train is None:
        noise_train = (float(noise_ratio),) * len(p_s_train)
    else:
        noise_train = tuple(float(r) for r in noise_ratio_train)
        if len(noise_train) != len(p_s_train) or any(not 0.0 <= r <= 0.5 for r in noise_train):
            raise ValueError(
                f"noise_ratio_train must give one ratio in [0, 0.5] per training environment "
                f"({len(p_s_train)}), got {noise_ratio_train}"
            )
    rng = np.random.default_rng(seed)
    train = _logit_split(rng, n_train, p_s_train, noise_train, dim_inv, dim_spu)
    test = _logit_split(rng, n_test, p_s_test, (float(noise_ratio),) * len(p_s_test), dim_inv, dim_spu)
    return train, test
