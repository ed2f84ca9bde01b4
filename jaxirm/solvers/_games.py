"""The games of the IRM-TV papers as solver factories: `erm`, `irm` (IRM / IRM-TV-ℓ1 / VREx), `minimax`
(ZIN-type environment inference) and `ood_tv` (the penalty weight a network λ_Ψ). Every factory checks its
arguments and builds one `GameConfig` through `_game`; `jaxirm.solvers._base.make_solver` turns it into a
`Solver`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optax

from jaxirm import _validation as _v
from jaxirm.losses import bce_with_logits
from jaxirm.models import EnvInference, LambdaNet
from jaxirm.optim import convergent_sgd
from jaxirm.solvers._base import (
    DUMMIES,
    MEASURES,
    PENALTIES,
    RHO_UPDATES,
    TV_PENALTIES,
    GameConfig,
    Solver,
    make_solver,
)
from jaxirm.solvers._models import (
    ModelLike,
    OptimizerLike,
    check_inferred_envs,
    default_hparams,
    default_optimizer,
    features_first_fn,
    model_fns,
)

__all__ = ["erm", "irm", "minimax", "ood_tv", "METHOD_NAMES"]

#: Paper names of the (factory, penalty) pairs.
METHOD_NAMES = {
    ("irm", "tv_l2"): "IRM",
    ("irm", "tv_l1"): "IRM-TV-l1",
    ("irm", "vrex"): "VREx",
    ("minimax", "tv_l2"): "ZIN",
    ("minimax", "tv_l1"): "Minimax-TV-l1",
    ("ood_tv_irm", "tv_l2"): "OOD-TV-IRM-l2",
    ("ood_tv_irm", "tv_l1"): "OOD-TV-IRM-l1",
    ("ood_tv_minimax", "tv_l2"): "OOD-TV-Minimax-l2",
    ("ood_tv_minimax", "tv_l1"): "OOD-TV-Minimax-l1",
    ("irm", "tv"): "IRM-TV",
    ("minimax", "tv"): "Minimax-TV",
    ("ood_tv_irm", "tv"): "OOD-TV-IRM",
    ("ood_tv_minimax", "tv"): "OOD-TV-Minimax",
}


def _hparams(optimizer, penalty: str, tv_norm: float | None, **values: float) -> dict[str, float]:
    """`default_hparams`, with ``tv_norm`` (default 1) when the norm is data (``penalty="tv"``).

    Raises:
      ValueError: ``tv_norm`` other than 1 or 2, or given with a fixed-norm penalty.
      TypeError: ``tv_norm`` not a number.
    """
    d = default_hparams(optimizer, **values)
    if penalty != "tv":
        if tv_norm is not None:
            raise ValueError(f"tv_norm is the norm of penalty='tv'; penalty={penalty!r} fixes its own")
        return d
    norm = 1.0 if tv_norm is None else _v.check_number("tv_norm", tv_norm)
    if _v.out_of_range("tv_norm", norm):
        raise ValueError(f"tv_norm must be {_v.HPARAM_RULES['tv_norm']} (TV-ℓ1 or TV-ℓ2), got {tv_norm!r}")
    d["tv_norm"] = norm
    return d


def _game(
    name: str,
    model: ModelLike,
    loss: Callable,
    optimizer: OptimizerLike | None,
    lr: float,
    defaults: Mapping[str, float],
    **config: Any,
) -> Solver:
    """The `Solver` of one game: the model's functions, Φ's optimizer (Adam with a sweepable ``lr`` by
    default) and the static ``config`` (`GameConfig` fields: penalty, measure, ρ, λ_Ψ, …)."""
    init_fn, apply_fn = model_fns(model)
    return make_solver(
        GameConfig(
            name=name,
            apply_fn=apply_fn,
            apply_ft=features_first_fn(model),
            init_fn=init_fn,
            loss_fn=loss,
            optimizer=default_optimizer(optimizer, lr),
            defaults=dict(defaults),
            **config,
        )
    )


def erm(
    model: ModelLike,
    *,
    loss: Callable = bce_with_logits,
    optimizer: OptimizerLike | None = None,
    lr: float = 1e-3,
    l2: float = 1e-3,
) -> Solver:
    """Empirical risk minimisation: mean loss + l2·Σ‖θ‖², Adam by default.

    Args:
      model: a flax.linen Module, a flax.nnx Module (instance, or class / partial built per seed), or
        ``(init_fn(key, x) -> params, apply_fn(params, x) -> logits)``.
      loss: per-example loss on logits (`jaxirm.losses`).
      optimizer: an optax optimizer for Φ; default ``inject_hyperparams(adam)(lr)`` so ``lr`` can be swept.
      lr: default learning rate (with the default optimizer).
      l2: default weight of the L2 term.

    Returns:
      A `Solver` with hyperparameters ``l2`` (and ``lr``).

    Raises:
      TypeError: ``model`` or ``optimizer`` of the wrong type.
      ValueError: negative ``l2``, non-positive ``lr``, or either not finite.
    """
    _v.loss_kind(loss)
    defaults = {**default_hparams(optimizer, lr=lr, l2=l2), "lam": 0.0, "anneal_steps": 0.0}
    return _game("ERM", model, loss, optimizer, lr, defaults, penalty=None, measure="uniform", num_envs=None)


def irm(
    model: ModelLike,
    *,
    penalty: str = "tv_l2",
    num_envs: int | None = 2,
    loss: Callable = bce_with_logits,
    measure: str = "uniform",
    optimizer: OptimizerLike | None = None,
    lr: float = 1e-3,
    lam: float = 1e4,
    l2: float = 1e-3,
    anneal_steps: int = 200,
    rescale: bool = True,
    split: bool = False,
    penalty_schedule: Callable | None = None,
    dummy: str = "scalar",
    tv_norm: float | None = None,
) -> Solver:
    """IRM (= IRM-TV-ℓ2), IRM-TV-ℓ1 or VREx on known environments.

    loss = Σ_e μ_e R_e + l2·Σ‖θ‖² + λ_k·max(0, penalty), λ_k = 0 for k < ``anneal_steps`` and ``lam``
    after; divided by 1 + λ_k when λ_k > 1 if ``rescale``. With λ > 1 and ``rescale`` this is the IRM
    paper's reg·risk + (1 − reg)·penalty with reg = 1/(1 + λ).

    ``dummy="scalar"`` (IRMv1 as usually implemented) scales the logits by one dummy w, one moment condition
    per environment. ``dummy="vector"`` is the IRM paper's formulation (arXiv 1907.02893): ``model`` outputs
    features φ(x) ∈ ℝᵈ (e.g. `jaxirm.models.LinearFeatures`, the paper's d×d Φ for its SEM), the logit is
    w·φ(x) with a dummy vector w = 1, and the penalties act on ∇_w R_e ∈ ℝᵈ
    (`jaxirm.feature_scale_grads`): Σ_e μ_e‖g_e‖² or (Σ_e μ_e‖g_e‖)², d conditions per environment. The
    solver's ``predict`` returns the logits Σ_j φ_j.

    Args:
      model: a flax.linen Module, a flax.nnx Module (instance, or class / partial built per seed), or
        ``(init_fn(key, x) -> params, apply_fn(params, x) -> logits)``.
      penalty: ``"tv_l2"`` (IRM), ``"tv_l1"`` (IRM-TV-ℓ1), ``"tv"`` (either, the norm a hyperparameter:
        ``tv_norm``) or ``"vrex"``.
      num_envs: number of environments when the batch's ``envs`` are int labels (None for weights).
      loss: per-example loss on logits.
      measure: environment measure μ, ``"uniform"`` (the papers) or ``"empirical"`` (the released code).
      optimizer: optax optimizer for Φ; default ``inject_hyperparams(adam)(lr)``.
      lr: default Adam learning rate of Φ (with the default optimizer; sweepable as ``"lr"``).
      lam: default penalty weight λ after the warm-up (sweepable as ``"lam"``).
      l2: default weight of the L2 term Σ‖θ‖² (sweepable as ``"l2"``).
      anneal_steps: default warm-up length with the penalty off (sweepable as ``"anneal_steps"``).
      rescale: divide the loss by 1 + λ when λ > 1 (the released code's convention).
      split: use the split-batch (unbiased minibatch) estimators of the penalty.
      penalty_schedule: an optax schedule ``step -> factor`` multiplying ``lam`` (e.g.
        ``optax.linear_schedule(0.0, 1.0, 1000, transition_begin=500)`` for a ramp); it replaces the default
        step at ``anneal_steps``, and the warm-up is where it is 0.
      dummy: ``"scalar"`` (the model outputs logits) or ``"vector"`` (the model outputs ``[n, d]`` features
        of a linear head; a loss on one logit per example).
      tv_norm: with ``penalty="tv"``, the default norm (1 or 2, default 1; sweepable as ``"tv_norm"``).

    Returns:
      A `Solver` named after the paper's method (``" (vector)"`` appended with the vector dummy); with
      ``penalty="tv"`` it has the hyperparameter ``tv_norm``, so IRM and IRM-TV-ℓ1 share one compiled
      sweep (``jaxirm.sweep(solver, ..., grid={"tv_norm": [1, 2]})``).

    Raises:
      ValueError: unknown ``penalty``/``measure``/``dummy``; negative or non-finite (nan, inf)
        hyperparameters; ``split`` with ``"vrex"``; ``dummy="vector"`` with ``"vrex"`` (no dummy), with
        ``split`` (no vector split-batch estimator yet) or with a multiclass loss; ``tv_norm`` other than 1
        or 2, or given with another penalty than ``"tv"``.
      TypeError: ``model``/``optimizer`` of the wrong type; ``num_envs`` not an int.
    """
    _v.check_choice("penalty", penalty, PENALTIES)
    _v.check_choice("measure", measure, MEASURES)
    if num_envs is not None:
        _v.check_num_envs(num_envs)
    if split and penalty == "vrex":
        raise ValueError("split=True has no estimator for penalty='vrex'")
    _v.check_choice("dummy", dummy, DUMMIES)
    if dummy == "vector":
        if penalty == "vrex":
            raise ValueError("dummy='vector' needs penalty 'tv_l2' or 'tv_l1' (vrex has no dummy)")
        if split:
            raise ValueError("dummy='vector' has no split-batch estimator; use split=False")
        if _v.loss_kind(loss) == _v.MULTICLASS:
            raise ValueError("dummy='vector' needs a loss on one logit per example (binary or regression)")
    suffix = " (vector)" if dummy == "vector" else ""
    return _game(
        METHOD_NAMES[("irm", penalty)] + suffix,
        model,
        loss,
        optimizer,
        lr,
        _hparams(optimizer, penalty, tv_norm, lr=lr, l2=l2, lam=lam, anneal_steps=anneal_steps),
        penalty=penalty,
        measure=measure,
        num_envs=num_envs,
        split=split,
        rescale=rescale,
        penalty_schedule=penalty_schedule,
        dummy=dummy,
    )


def minimax(
    model: ModelLike,
    *,
    penalty: str = "tv_l2",
    num_envs: int = 2,
    infer_hidden: int = 16,
    loss: Callable = bce_with_logits,
    measure: str = "empirical",
    optimizer: OptimizerLike | None = None,
    infer_optimizer: OptimizerLike | None = None,
    rho_updates: str = "warmup",
    lr: float = 1e-3,
    lam: float = 1e4,
    l2: float = 1e-3,
    anneal_steps: int = 200,
    rescale: bool = True,
    split: bool = False,
    penalty_schedule: Callable | None = None,
    tv_norm: float | None = None,
) -> Solver:
    """ZIN (= Minimax-TV-ℓ2) or Minimax-TV-ℓ1: environments inferred by ρ(z) that ascends the penalty.

    ρ = `jaxirm.models.EnvInference` on the standardised auxiliary variable z (statistics of the batch given
    to ``init``), sigmoid for 2 environments and softmax for more. The penalty is computed under the measure
    induced by ρ (``"empirical"``: μ_e = mean_i ρ_e(z_i), Lai & Wang eq. 27 and the released code).

    Args:
      model: a flax.linen or flax.nnx Module (instance or class), or ``(init_fn, apply_fn)``.
      penalty: ``"tv_l2"`` (ZIN), ``"tv_l1"`` (Minimax-TV-ℓ1) or ``"tv"`` (either, the norm a
        hyperparameter: ``tv_norm``).
      num_envs: number of inferred environments E ≥ 2.
      infer_hidden: hidden width of ρ.
      loss: per-example loss on logits.
      measure: ``"empirical"`` (ρ-induced, default) or ``"uniform"``.
      optimizer: optax optimizer for Φ; default ``inject_hyperparams(adam)(lr)``.
      infer_optimizer: optimizer of ρ (applied to the negated gradient); default Adam(1e-3) as in ZIN.
      rho_updates: when ρ ascends: ``"warmup"`` (ZIN, default), ``"always"`` or ``"after_warmup"``.
      lr: default Adam learning rate of Φ (with the default optimizer; sweepable as ``"lr"``).
      lam: default penalty weight λ after the warm-up (sweepable as ``"lam"``).
      l2: default weight of the L2 term Σ‖θ‖² (sweepable as ``"l2"``).
      anneal_steps: default warm-up length with the penalty off (sweepable as ``"anneal_steps"``).
      rescale: divide the loss by 1 + λ when λ > 1.
      split: use the split-batch estimators.
      penalty_schedule: an optax schedule ``step -> factor`` multiplying ``lam`` (e.g.
        ``optax.linear_schedule(0.0, 1.0, 1000, transition_begin=500)`` for a ramp); it replaces the default
        step at ``anneal_steps``, and the warm-up is where it is 0.
      tv_norm: with ``penalty="tv"``, the default norm (1 or 2, default 1; sweepable as
        ``"tv_norm"``): ZIN and Minimax-TV-ℓ1 then share one compiled sweep.

    Returns:
      A `Solver`; its batches need ``z``.

    Raises:
      ValueError: unknown ``penalty``/``measure``/``rho_updates``; ``num_envs`` < 2; negative or non-finite
        (nan, inf) hyperparameters; ``tv_norm`` other than 1 or 2, or given with another penalty than
        ``"tv"``.
      TypeError: ``model``/``optimizer`` of the wrong type.
    """
    _v.check_choice("penalty", penalty, TV_PENALTIES)
    _v.check_choice("measure", measure, MEASURES)
    _v.check_choice("rho_updates", rho_updates, RHO_UPDATES)
    rho = EnvInference(num_envs=check_inferred_envs(num_envs), hidden=infer_hidden)
    return _game(
        METHOD_NAMES[("minimax", penalty)],
        model,
        loss,
        optimizer,
        lr,
        _hparams(optimizer, penalty, tv_norm, lr=lr, l2=l2, lam=lam, anneal_steps=anneal_steps),
        penalty=penalty,
        measure=measure,
        num_envs=None,
        split=split,
        rescale=rescale,
        infer=rho,
        infer_init_fn=rho.init,
        infer_optimizer=infer_optimizer or optax.adam(1e-3),
        rho_updates=rho_updates,
        penalty_schedule=penalty_schedule,
    )


def ood_tv(
    model: ModelLike,
    *,
    base: str = "irm",
    penalty: str = "tv_l1",
    num_envs: int | None = 2,
    lam_hidden: int = 16,
    infer_hidden: int = 16,
    loss: Callable = bce_with_logits,
    measure: str | None = None,
    optimizer: OptimizerLike | None = None,
    lam_optimizer: OptimizerLike | None = None,
    infer_optimizer: OptimizerLike | None = None,
    rho_updates: str = "always",
    lr: float = 1e-3,
    lam: float = 1.0,
    l2: float = 1e-3,
    anneal_steps: int = 200,
    rescale: bool = False,
    split: bool = False,
    penalty_schedule: Callable | None = None,
    tv_norm: float | None = None,
) -> Solver:
    """OOD-TV-IRM-ℓ1/ℓ2 and OOD-TV-Minimax-ℓ1/ℓ2: the penalty weight is a network λ_Ψ(vec Φ) ≥ 0.

    loss_Φ = risk + l2·Σ‖θ‖² + A_k·λ_Ψ(vec Φ)·penalty with A_k = 0 during the warm-up and ``lam`` after
    (the released code's ``penalty_weight_anneal``); Φ descends (∇_Φ λ included), then Ψ (and ρ) ascend on
    A_k·λ_Ψ(vec Φ)·penalty at the new Φ. Ψ's default optimizer is the step of OOD-TV Theorem 3 / eq. 19,
    η_k = 1/(k^p‖∇_Ψ‖) with p = 1.0001 (`jaxirm.optim.convergent_sgd` with lr 1.0, the value the theorem
    states; k counts the adversarial steps, from the end of the warm-up). Each step moves Ψ by 1/k^p in
    norm, so λ_Ψ adapts within the first few hundred adversarial steps and then settles. A scale below 1
    slows it proportionally: lr 1e-3 (jaxirm ≤ 0.1.x's default) moves Ψ by about 0.009 over 3000 steps
    and leaves λ_Ψ at its initial value.

    Args:
      model: a flax.linen or flax.nnx Module (instance or class), or ``(init_fn, apply_fn)``.
      base: ``"irm"`` (known environments) or ``"minimax"`` (environments inferred by ρ(z)).
      penalty: ``"tv_l1"``, ``"tv_l2"`` or ``"tv"`` (either, the norm a hyperparameter: ``tv_norm``).
      num_envs: environments (labels for ``"irm"``; inferred count for ``"minimax"``).
      lam_hidden: hidden width of λ_Ψ.
      infer_hidden: hidden width of ρ (``"minimax"``).
      loss: per-example loss on logits.
      measure: default ``"uniform"`` for ``"irm"``, ``"empirical"`` (ρ-induced) for ``"minimax"``.
      optimizer: optax optimizer for Φ; default ``inject_hyperparams(adam)(lr)``.
      lam_optimizer: optimizer of Ψ (applied to the negated gradient); default
        ``convergent_sgd(1.0, power=1.0001)``, Theorem 3's step.
      infer_optimizer: optimizer of ρ; default Adam(1e-3).
      rho_updates: when ρ ascends (``"always"`` by default, eq. 18).
      lr: default Adam learning rate of Φ (with the default optimizer; sweepable as ``"lr"``).
      lam: default penalty weight after the warm-up (sweepable as ``"lam"``): the constant A that
        multiplies λ_Ψ.
      l2: default weight of the L2 term Σ‖θ‖² (sweepable as ``"l2"``).
      anneal_steps: default warm-up length with the penalty off (sweepable as ``"anneal_steps"``).
      rescale: divide the loss by 1 + λ when λ > 1 (off by default, as in the OOD-TV code).
      split: use the split-batch estimators.
      penalty_schedule: an optax schedule ``step -> factor`` multiplying ``lam`` (e.g.
        ``optax.linear_schedule(0.0, 1.0, 1000, transition_begin=500)`` for a ramp); it replaces the default
        step at ``anneal_steps``, and the warm-up is where it is 0.
      tv_norm: with ``penalty="tv"``, the default norm (1 or 2, default 1; sweepable as
        ``"tv_norm"``): the two OOD-TV norms then share one compiled sweep.

    Returns:
      A `Solver`.

    Raises:
      ValueError: unknown ``base``/``penalty``/``measure``/``rho_updates``; negative hyperparameters;
        ``tv_norm`` other than 1 or 2, or given with another penalty than ``"tv"``.
      TypeError: ``model``/``optimizer`` of the wrong type.
    """
    _v.check_choice("base", base, ("irm", "minimax"))
    _v.check_choice("penalty", penalty, TV_PENALTIES)
    _v.check_choice("rho_updates", rho_updates, RHO_UPDATES)
    measure = measure or ("uniform" if base == "irm" else "empirical")
    _v.check_choice("measure", measure, MEASURES)
    infer = None
    if base == "minimax":
        infer = EnvInference(num_envs=check_inferred_envs(num_envs), hidden=infer_hidden)
    elif num_envs is not None:
        _v.check_num_envs(num_envs)
    lam_net = LambdaNet(hidden=lam_hidden)
    return _game(
        METHOD_NAMES[(f"ood_tv_{base}", penalty)],
        model,
        loss,
        optimizer,
        lr,
        _hparams(optimizer, penalty, tv_norm, lr=lr, l2=l2, lam=lam, anneal_steps=anneal_steps),
        penalty=penalty,
        measure=measure,
        num_envs=num_envs if base == "irm" else None,
        split=split,
        rescale=rescale,
        infer=infer,
        infer_init_fn=infer.init if infer is not None else None,
        infer_optimizer=(infer_optimizer or optax.adam(1e-3)) if infer is not None else None,
        rho_updates=rho_updates,
        lam_net=lam_net,
        lam_optimizer=lam_optimizer or convergent_sgd(1.0, power=1.0001),
        penalty_schedule=penalty_schedule,
    )
