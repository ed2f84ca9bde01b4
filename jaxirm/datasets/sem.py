"""The linear structural-equation model of the IRM paper (numpy only, seeded): `irm_sem`, its ground truth
`irm_sem_truth` / `SEMTruth` and the paper's causal / non-causal errors `sem_errors`.

Every name is also importable from `jaxirm.datasets` and `jaxirm.datasets.synthetic`.

References:
  Arjovsky, Bottou, Gulrajani & Lopez-Paz, "Invariant Risk Minimization", arXiv:1907.02893, 2019 (Sec. 5.1,
  the synthetic experiments).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData

__all__ = ["SEMTruth", "irm_sem", "irm_sem_truth", "sem_errors"]

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


#: The check of one noise scale: a finite number > 0.
_check_sigma = partial(_v.check_number, low=0.0, open_low=True, what="a noise scale sigma > 0")


def _check_sem(dim: int, variant: str, weights: str) -> None:
    _v.check_choice("variant", variant, _SEM_VARIANTS)
    _v.check_choice("weights", weights, _SEM_WEIGHTS)
    _v.check_int("dim", dim, 1)


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
      TypeError: ``seed`` or ``dim`` that is not an int, or a ``variant`` / ``weights`` that is not a string.

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
      TypeError: ``seed``, ``dim`` or a size that is not an int, a ``variant`` / ``weights`` that is not a
        string, or sigmas that are not a sequence of numbers.

    Examples:
      >>> train, test = irm_sem(0, n_per_env=4, variant="FES")
      >>> train.x.shape, train.y.shape, train.num_envs, test.num_envs
      ((12, 10), (12,), 3, 2)
      >>> train.z[::4, 0].tolist()
      [0.20000000298023224, 2.0, 5.0]
    """
    seed = _v.check_seed(seed)
    _check_sem(dim, variant, weights)
    n_per_env = _v.check_int("n_per_env", n_per_env, 1)
    n_test = n_per_env if n_per_env_test is None else _v.check_int("n_per_env_test", n_per_env_test, 1)
    sigmas_train = _v.check_numbers("sigmas_train", sigmas_train, check=_check_sigma, what="noise scales")
    sigmas_test = _v.check_numbers("sigmas_test", sigmas_test, check=_check_sigma, what="noise scales")
    rng = np.random.default_rng(seed)
    params = _sem_params(rng, dim, variant, weights)
    y_noise_varies = variant[1] == "E"
    train = _sem_split(rng, params, n_per_env, sigmas_train, y_noise_varies)
    test = _sem_split(rng, params, n_test, sigmas_test, y_noise_varies)
    return train, test
