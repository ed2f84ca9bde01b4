"""Synthetic data-generating processes of the IRM-TV papers (numpy only, seeded, no downloads)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData

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


def _check_logit_args(
    p_s_train: Sequence[float], p_s_test: Sequence[float], noise_ratio: float, dim_inv: int, dim_spu: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    p_s_train = _check_probs("p_s_train", p_s_train)
    p_s_test = _check_probs("p_s_test", p_s_test)
    _v.check_int("dim_inv", dim_inv)
    _v.check_int("dim_spu", dim_spu)
    if not 0.0 <= noise_ratio <= 0.5:
        raise ValueError(f"noise_ratio must lie in [0, 0.5], got {noise_ratio}")
    if dim_inv < 1 or dim_spu < 0:
        raise ValueError(f"dim_inv must be >= 1 and dim_spu >= 0, got {dim_inv} and {dim_spu}")
    return p_s_train, p_s_test


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
      TypeError: ``seed``, a size or a dimension that is not an int.

    Examples:
      >>> train, test = logit_z(0, n_train=100, n_test=80)
      >>> train.x.shape, train.num_envs, test.num_envs
      ((100, 10), 2, 4)
    """
    seed = _v.check_seed(seed)
    n_train, n_test = _v.check_int("n_train", n_train), _v.check_int("n_test", n_test)
    p_s_train, p_s_test = _check_logit_args(p_s_train, p_s_test, noise_ratio, dim_inv, dim_spu)
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
      TypeError: ``seed``, ``n_per_env``, ``grid`` or a dimension that is not an int.

    Examples:
      >>> train, test = logit_2z(0, n_per_env=9, grid=3)
      >>> train.x.shape, train.z.shape, test.z.shape, test.num_envs
      ((18, 10), (18, 2), (36, 2), 4)
      >>> train.z[[0, 1, 3, 9]].tolist()
      [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]]
    """
    seed = _v.check_seed(seed)
    n_per_env, grid = _v.check_int("n_per_env", n_per_env), _v.check_int("grid", grid)
    p_s_train, p_s_test = _check_logit_args(p_s_train, p_s_test, noise_ratio, dim_inv, dim_spu)
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    if n_per_env != grid * grid:
        raise ValueError(
            f"n_per_env must equal grid**2 = {grid * grid} (one lattice point each), got {n_per_env}"
        )
    rng = np.random.default_rng(seed)
    splits = []
    for p_s in (p_s_train, p_s_test):
        x, y, envs = _logit_envs(rng, n_per_env, p_s, (float(noise_ratio),) * len(p_s), dim_inv, dim_spu)
        splits.append(EnvData(x=x, y=y, envs=envs, z=_lattice_z(len(p_s), grid), num_envs=len(p_s)))
    return splits[0], splits[1]


_SEM_VARIANTS = tuple(a + b + c for a in "FP" for b in "OE" for c in "US")
_SEM_WEIGHTS = ("ones", "gaussian")


class SEMTruth(NamedTuple):
    """Ground truth of an `irm_sem` draw, for scoring a linear solution X·β̂ of the target.

    Attributes:
      coef: ``[2·dim]`` float64 causal coefficients in X's coordinates, ``scramble @ coef == coef_z``.
      coef_z: ``[2·dim]`` float64 causal coefficients on the unscrambled ``(Z1, Z2)``: ``(W_{1→y}·1, 0)``.
      scramble: ``[2·dim, 2·dim]`` float64 orthogonal S with X = (Z1, Z2)·S (identity when unscrambled).
    """

    coef: np.ndarray
    coef_z: np.ndarray
    scramble: np.ndarray


def _check_sem(dim: int, variant: str, weights: str) -> None:
    if variant not in _SEM_VARIANTS:
        raise ValueError(
            f"variant must be one of {', '.join(_SEM_VARIANTS)} (F/P observed, O/E Y-noise, U/S scrambled), "
            f"got {variant!r}"
        )
    if weights not in _SEM_WEIGHTS:
        raise ValueError(f"weights must be one of {_SEM_WEIGHTS}, got {weights!r}")
    if _v.check_int("dim", dim) < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")


def _check_sigmas(name: str, sigmas: Sequence[float]) -> tuple[float, ...]:
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas:
        raise ValueError(f"{name} must list at least one environment's sigma")
    if any(not (math.isfinite(s) and s > 0.0) for s in sigmas):
        raise ValueError(f"{name} must hold finite sigmas > 0, got {sigmas}")
    return sigmas


def _sem_params(rng: np.random.Generator, dim: int, variant: str, weights: str) -> dict[str, np.ndarray]:
    # Every weight is drawn, whatever the variant, so that one seed gives the same W and S to all eight
    # variants (FOU and FOS differ only by S, FOU and POU only by the hidden weights).
    g_1y = rng.standard_normal((dim, dim)) / (2 * dim)
    g_y2 = rng.standard_normal((dim, dim)) / (2 * dim)
    s_raw = rng.standard_normal((2 * dim, 2 * dim))
    g_h1, g_hy, g_h2 = (rng.standard_normal((dim, dim)) / (2 * dim) for _ in range(3))
    eye, zero = np.eye(dim), np.zeros((dim, dim))
    ones = weights == "ones"
    hidden = variant[0] == "P"
    return {
        "w_1y": eye if ones else g_1y,
        "w_y2": eye if ones else g_y2,
        "w_h1": g_h1 if hidden else eye,
        "w_hy": g_hy if hidden else zero,
        "w_h2": g_h2 if hidden else zero,
        "scramble": np.linalg.qr(s_raw)[0] if variant[2] == "S" else np.eye(2 * dim),
    }


def _truth(params: dict[str, np.ndarray], dim: int) -> SEMTruth:
    coef_z = np.concatenate([params["w_1y"].sum(1), np.zeros(dim)])
    s = params["scramble"]
    return SEMTruth(coef=s.T @ coef_z, coef_z=coef_z, scramble=s)


def irm_sem_truth(seed: int = 0, *, dim: int = 5, variant: str = "FOU", weights: str = "ones") -> SEMTruth:
    """The causal coefficients and scramble of ``irm_sem(seed, dim=dim, variant=variant, weights=weights)``.

    They depend only on these four arguments (never on the sample sizes or the sigmas), because `irm_sem`
    draws its weights first from the seeded generator.

    Args:
      seed: the seed given to `irm_sem`.
      dim: dimension of each of Z1 and Z2 (X has ``2·dim`` columns), ≥ 1.
      variant: one of ``FOU, FOS, FEU, FES, POU, POS, PEU, PES`` (see `irm_sem`).
      weights: ``"ones"`` or ``"gaussian"`` (see `irm_sem`).

    Returns:
      `SEMTruth` with ``coef`` ``[2·dim]``, ``coef_z`` ``[2·dim]`` and ``scramble`` ``[2·dim, 2·dim]``.

    Raises:
      ValueError: an unknown ``variant`` or ``weights``, ``dim`` < 1, or a negative ``seed``.
      TypeError: ``seed`` or ``dim`` that is not an int.

    Examples:
      >>> irm_sem_truth(0, dim=2).coef.tolist()
      [1.0, 1.0, 0.0, 0.0]
    """
    seed = _v.check_seed(seed)
    _check_sem(dim, variant, weights)
    return _truth(_sem_params(np.random.default_rng(seed), dim, variant, weights), dim)


def sem_errors(coef_hat: np.ndarray, truth: SEMTruth) -> tuple[float, float]:
    """Causal and non-causal errors of a linear solution, as in the IRM paper's synthetic figure.

    ``coef_hat`` (in X's coordinates) is mapped back to the unscrambled (Z1, Z2) coordinates,
    ``S @ coef_hat``, and compared with ``truth.coef_z``: the causal error is the mean squared error on the
    Z1 block, the non-causal error the mean squared error on the Z2 block (whose true coefficients are 0).

    Args:
      coef_hat: ``[2·dim]`` estimated coefficients of X (a bias, if fitted, is left out).
      truth: the `SEMTruth` of the data, from `irm_sem_truth`.

    Returns:
      ``(causal_error, noncausal_error)`` as floats.

    Raises:
      ValueError: ``coef_hat`` does not have ``2·dim`` entries.

    Examples:
      >>> truth = irm_sem_truth(0, dim=2)
      >>> sem_errors(np.array([1.0, 0.5, 0.2, 0.0]), truth)
      (0.125, 0.02)
    """
    coef_hat = np.asarray(coef_hat, dtype=np.float64).reshape(-1)
    if coef_hat.shape != truth.coef_z.shape:
        raise ValueError(f"coef_hat must have {truth.coef_z.size} entries, got {coef_hat.size}")
    diff = truth.scramble @ coef_hat - truth.coef_z
    dim = diff.size // 2
    return float(np.mean(diff[:dim] ** 2)), float(np.mean(diff[dim:] ** 2))


def _sem_split(
    rng: np.random.Generator,
    params: dict[str, np.ndarray],
    n_env: int,
    sigmas: tuple[float, ...],
    y_noise_varies: bool,
) -> EnvData:
    dim = params["w_1y"].shape[0]
    xs, ys, es, zs = [], [], [], []
    for e, sigma in enumerate(sigmas):
        h = rng.standard_normal((n_env, dim)) * sigma
        z1 = h @ params["w_h1"] + rng.standard_normal((n_env, dim)) * sigma
        eps_y = rng.standard_normal((n_env, dim)) * (sigma if y_noise_varies else 1.0)
        y_vec = z1 @ params["w_1y"] + h @ params["w_hy"] + eps_y
        eps_2 = rng.standard_normal((n_env, dim)) * (1.0 if y_noise_varies else sigma)
        z2 = y_vec @ params["w_y2"] + h @ params["w_h2"] + eps_2
        xs.append(np.concatenate([z1, z2], axis=1) @ params["scramble"])
        ys.append(y_vec.sum(1))
        es.append(np.full(n_env, e))
        zs.append(np.full(n_env, sigma))
    return EnvData(
        x=np.concatenate(xs).astype(np.float32),
        y=np.concatenate(ys).astype(np.float32),
        envs=np.concatenate(es).astype(np.int32),
        z=np.concatenate(zs).astype(np.float32)[:, None],
        num_envs=len(sigmas),
    )


def irm_sem(
    seed: int = 0,
    *,
    n_per_env: int = 1000,
    n_per_env_test: int | None = None,
    dim: int = 5,
    variant: str = "FOU",
    weights: str = "ones",
    sigmas_train: Sequence[float] = (0.2, 2.0, 5.0),
    sigmas_test: Sequence[float] = (0.1, 10.0),
) -> tuple[EnvData, EnvData]:
    """The linear structural-equation regression of the IRM paper (Arjovsky et al. 2019, section 5.1).

    Per environment with noise scale σ, with Y a ``dim``-vector and row-vector products:

        H  ← N(0, σ²)
        Z1 ← H·W_{h→1} + N(0, σ²)
        Y  ← Z1·W_{1→y} + H·W_{h→y} + N(0, σ_y²)
        Z2 ← Y·W_{y→2} + H·W_{h→2} + N(0, σ_2²)
        X  = (Z1, Z2)·S,   target = Σ_j Y_j

    The variant names the paper's eight setups by three letters:

    - **F** fully observed: W_{h→1} = I, W_{h→y} = W_{h→2} = 0 (H only adds noise to Z1, no confounding);
      **P** partially observed: the three hidden weights are Gaussian, N(0, 1)/(2·dim) entrywise, so H
      confounds Z1, Y and Z2.
    - **O** homoskedastic Y-noise: σ_y = 1 and σ_2 = σ (the noise on Y is the same in every environment);
      **E** heteroskedastic Y-noise: σ_y = σ and σ_2 = 1.
    - **U** unscrambled: S = I; **S** scrambled: S is the Q factor of a Gaussian ``[2·dim, 2·dim]`` matrix
      (orthogonal).

    The causal coefficients of the target are ``(W_{1→y}·1, 0)`` on (Z1, Z2), ``Sᵀ`` of that on X
    (`irm_sem_truth`); in the F variants ``E[target | Z1]`` is that linear function in every environment,
    with residual variance ``dim`` (O) or ``dim·σ²`` (E), while least squares on the pooled X also leans on
    Z2. Score a solution β̂ with `sem_errors`, the paper's causal / non-causal errors.

    Known (the released code ``code/experiment_synthetic/{sem.py,main.py}``, ``ChainEquationModel``): these
    equations; its ``--dim 10`` is X's total width (here ``dim = 5`` per block, the same X); its default
    ``ones=True`` (our ``weights="ones"``), W_{1→y} = W_{y→2} = I, which gives the published
    ``SEM [+1, …, +1, 0, …, 0]`` solution; ``ones=False`` draws N(0, 1)/(2·dim) weights (our
    ``"gaussian"``); hidden weights N(0, 1)/(2·dim); S from a QR of a Gaussian matrix; n = 1000 per
    environment; training environments σ ∈ {0.2, 2, 5}; the code's ``hetero=1`` puts σ on Y's noise and 1 on
    Z2's (``hetero=0`` the reverse), the draw order h, Z1-noise, Y-noise, Z2-noise; the target is the sum of
    the Y vector. Assumed here: the paper scores coefficients and has no test environments, so
    ``sigmas_test = (0.1, 10)`` (one below, one above the training range) is our choice; z is σ, repeated per
    example, so it identifies the environment exactly; the numpy stream does not reproduce torch's draws.

    Args:
      seed: seed of the numpy generator; the weights and S are drawn first, then training and test data.
      n_per_env: examples per training environment, ≥ 1.
      n_per_env_test: examples per test environment, ≥ 1 (default: ``n_per_env``).
      dim: dimension of each of Z1, Z2 and Y, ≥ 1; X has ``2·dim`` columns.
      variant: one of ``FOU, FOS, FEU, FES, POU, POS, PEU, PES``.
      weights: ``"ones"`` (W_{1→y} = W_{y→2} = I, the paper's runs) or ``"gaussian"`` (N(0, 1)/(2·dim)).
      sigmas_train: noise scale σ of every training environment, each finite and > 0.
      sigmas_test: noise scale σ of every test environment, each finite and > 0.

    Returns:
      ``(train, test)`` `EnvData` with x ``[E·n, 2·dim]`` float32, y ``[E·n]`` float32 real targets, envs
      ``[E·n]`` int32 and z ``[E·n, 1]`` float32 holding the environment's σ.

    Raises:
      ValueError: an unknown ``variant`` or ``weights``, ``dim`` or a size < 1, a sigma that is not a
        finite positive number, or a negative ``seed``.
      TypeError: ``seed``, ``dim`` or a size that is not an int.

    Examples:
      >>> train, test = irm_sem(0, n_per_env=4, variant="FES")
      >>> train.x.shape, train.y.shape, train.num_envs, test.num_envs
      ((12, 10), (12,), 3, 2)
      >>> train.z[::4, 0].tolist()
      [0.20000000298023224, 2.0, 5.0]
    """
    seed = _v.check_seed(seed)
    _check_sem(dim, variant, weights)
    n_per_env = _v.check_int("n_per_env", n_per_env)
    n_test = n_per_env if n_per_env_test is None else _v.check_int("n_per_env_test", n_per_env_test)
    if n_per_env < 1 or n_test < 1:
        raise ValueError(f"n_per_env and n_per_env_test must be >= 1, got {n_per_env} and {n_per_env_test}")
    sigmas_train = _check_sigmas("sigmas_train", sigmas_train)
    sigmas_test = _check_sigmas("sigmas_test", sigmas_test)
    rng = np.random.default_rng(seed)
    params = _sem_params(rng, dim, variant, weights)
    y_noise_varies = variant[1] == "E"
    train = _sem_split(rng, params, n_per_env, sigmas_train, y_noise_varies)
    test = _sem_split(rng, params, n_test, sigmas_test, y_noise_varies)
    return train, test
