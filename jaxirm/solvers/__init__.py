"""Solvers: ERM, IRM / IRM-TV-ℓ1 / VREx, Minimax (ZIN-type) and OOD-TV primal-dual games, driven by optax.

Every factory returns a `Solver` — ``init(key, batch, hparams=None) -> SolverState`` and
``step(state, batch) -> (state, metrics)`` — of pure functions. Static configuration (the model, the loss, the
penalty kind) is closed over; everything one may sweep (``lam``, ``l2``, ``anneal_steps``, ``lr``) lives in
``state.hparams`` as arrays, so ``jax.vmap(solver.init)`` over a grid of hyperparameters compiles once.

The games share one step (Gauss–Seidel order, OOD-TV eqs. 17–18): Φ takes a descent step with the dual fixed,
then the dual players (ρ for Minimax, Ψ for OOD-TV) take an ascent step at the *new* Φ.

Conventions of the released code that are kept, and which are on by default:

* ERM warm-up: the penalty weight is 0 for ``anneal_steps`` steps, then ``lam`` (always on).
* ``rescale=True`` (IRM and Minimax; off for OOD-TV, as in its code): the loss is divided by 1 + λ once
  λ > 1. With Adam this matters mostly through the moment estimates at the switch; it is on by default because
  it is what produced the papers' numbers.
* ``rho_updates="warmup"`` for Minimax (ZIN trains ρ only while the penalty is off); OOD-TV-Minimax defaults
  to ``"always"`` (ρ ascends at every step, eq. 18); Ψ ascends once the penalty is on (before, λ_Ψ does not
  enter the loss).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
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
    Batch,
    GameConfig,
    Solver,
    SolverState,
    injected_learning_rate,
    make_solver,
)
from jaxirm.solvers._eiil import make_eiil
from jaxirm.solvers._lff import lff
from jaxirm.solvers._models import ModelLike, OptimizerLike, check_optimizer, model_fns
from jaxirm.solvers._tiva import tiva

__all__ = [
    "Batch",
    "Solver",
    "SolverState",
    "erm",
    "irm",
    "minimax",
    "ood_tv",
    "eiil",
    "lff",
    "tiva",
    "METHOD_NAMES",
]

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
}

# A flax.linen Module, a flax.nnx Module (instance, class or partial) or (init_fn, apply_fn): see _models.
_model_fns = model_fns


def _optimizer(optimizer: OptimizerLike | None, lr: float) -> OptimizerLike:
    if optimizer is None:
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    return check_optimizer("optimizer", optimizer)  # any optax-like object, optax.MultiSteps included


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_positive(name: str, value: float, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value):  # lam = inf would make the warm-up's 0·lam a NaN
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def _injected_lr(optimizer: OptimizerLike) -> float | None:
    """The learning rate of an optimizer built with `optax.inject_hyperparams`, else None."""
    try:
        lr = injected_learning_rate(optimizer.init(jnp.zeros(())))
    except Exception:  # an optimizer that cannot initialise on a scalar: no sweepable lr
        return None
    return None if lr is None else float(np.asarray(lr))


def _defaults(lr, lam, l2, anneal_steps, optimizer):
    d = {
        "lam": _check_positive("lam", lam),
        "l2": _check_positive("l2", l2),
        "anneal_steps": _check_positive("anneal_steps", anneal_steps),
    }
    if optimizer is None:
        d["lr"] = _check_positive("lr", lr, allow_zero=False)
    else:
        injected = _injected_lr(optimizer)
        if injected is not None:  # built with inject_hyperparams: its learning rate can be swept as "lr"
            d["lr"] = injected
    return d


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
    init_fn, apply_fn = _model_fns(model)
    _v.loss_kind(loss)
    defaults = _defaults(lr, 0.0, l2, 0.0, optimizer)
    defaults = {k: v for k, v in defaults.items() if k in ("l2", "lr")}
    cfg = GameConfig(
        name="ERM",
        apply_fn=apply_fn,
        init_fn=init_fn,
        loss_fn=loss,
        optimizer=_optimizer(optimizer, lr),
        penalty=None,
        measure="uniform",
        num_envs=None,
        defaults={**defaults, "lam": 0.0, "anneal_steps": 0.0},
    )
    return make_solver(cfg)


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
      penalty: ``"tv_l2"`` (IRM), ``"tv_l1"`` (IRM-TV-ℓ1) or ``"vrex"``.
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

    Returns:
      A `Solver` named after the paper's method (``" (vector)"`` appended with the vector dummy).

    Raises:
      ValueError: unknown ``penalty``/``measure``/``dummy``; negative or non-finite (nan, inf)
        hyperparameters; ``split`` with ``"vrex"``; ``dummy="vector"`` with ``"vrex"`` (no dummy), with
        ``split`` (no vector split-batch estimator yet) or with a multiclass loss.
      TypeError: ``model``/``optimizer`` of the wrong type; ``num_envs`` not an int.
    """
    init_fn, apply_fn = _model_fns(model)
    _check_choice("penalty", penalty, PENALTIES)
    _check_choice("measure", measure, MEASURES)
    if num_envs is not None:
        _v.check_num_envs(num_envs)
    if split and penalty == "vrex":
        raise ValueError("split=True has no estimator for penalty='vrex'")
    _check_choice("dummy", dummy, DUMMIES)
    if dummy == "vector":
        if penalty == "vrex":
            raise ValueError("dummy='vector' needs penalty 'tv_l2' or 'tv_l1' (vrex has no dummy)")
        if split:
            raise ValueError("dummy='vector' has no split-batch estimator; use split=False")
        if _v.loss_kind(loss) == _v.MULTICLASS:
            raise ValueError("dummy='vector' needs a loss on one logit per example (binary or regression)")
    suffix = " (vector)" if dummy == "vector" else ""
    cfg = GameConfig(
        name=METHOD_NAMES[("irm", penalty)] + suffix,
        apply_fn=apply_fn,
        init_fn=init_fn,
        loss_fn=loss,
        optimizer=_optimizer(optimizer, lr),
        penalty=penalty,
        measure=measure,
        num_envs=num_envs,
        split=split,
        rescale=rescale,
        defaults=_defaults(lr, lam, l2, anneal_steps, optimizer),
        penalty_schedule=penalty_schedule,
        dummy=dummy,
    )
    return make_solver(cfg)


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
) -> Solver:
    """ZIN (= Minimax-TV-ℓ2) or Minimax-TV-ℓ1: environments inferred by ρ(z) that ascends the penalty.

    ρ = `jaxirm.models.EnvInference` on the standardised auxiliary variable z (statistics of the batch given
    to ``init``), sigmoid for 2 environments and softmax for more. The penalty is computed under the measure
    induced by ρ (``"empirical"``: μ_e = mean_i ρ_e(z_i), Lai & Wang eq. 27 and the released code).

    Args:
      model: a flax.linen or flax.nnx Module (instance or class), or ``(init_fn, apply_fn)``.
      penalty: ``"tv_l2"`` (ZIN) or ``"tv_l1"`` (Minimax-TV-ℓ1).
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

    Returns:
      A `Solver`; its batches need ``z``.

    Raises:
      ValueError: unknown ``penalty``/``measure``/``rho_updates``; ``num_envs`` < 2; negative or non-finite
        (nan, inf) hyperparameters.
      TypeError: ``model``/``optimizer`` of the wrong type.
    """
    init_fn, apply_fn = _model_fns(model)
    _check_choice("penalty", penalty, ("tv_l1", "tv_l2"))
    _check_choice("measure", measure, MEASURES)
    _check_choice("rho_updates", rho_updates, RHO_UPDATES)
    if _v.check_num_envs(num_envs) < 2:
        raise ValueError(f"num_envs must be >= 2 to infer environments, got {num_envs}")
    rho = EnvInference(num_envs=num_envs, hidden=infer_hidden)
    cfg = GameConfig(
        name=METHOD_NAMES[("minimax", penalty)],
        apply_fn=apply_fn,
        init_fn=init_fn,
        loss_fn=loss,
        optimizer=_optimizer(optimizer, lr),
        penalty=penalty,
        measure=measure,
        num_envs=None,
        split=split,
        rescale=rescale,
        infer=rho,
        infer_init_fn=rho.init,
        infer_optimizer=infer_optimizer or optax.adam(1e-3),
        rho_updates=rho_updates,
        defaults=_defaults(lr, lam, l2, anneal_steps, optimizer),
        penalty_schedule=penalty_schedule,
    )
    return make_solver(cfg)


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
      penalty: ``"tv_l1"`` or ``"tv_l2"``.
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

    Returns:
      A `Solver`.

    Raises:
      ValueError: unknown ``base``/``penalty``/``measure``/``rho_updates``; negative hyperparameters.
      TypeError: ``model``/``optimizer`` of the wrong type.
    """
    init_fn, apply_fn = _model_fns(model)
    _check_choice("base", base, ("irm", "minimax"))
    _check_choice("penalty", penalty, ("tv_l1", "tv_l2"))
    _check_choice("rho_updates", rho_updates, RHO_UPDATES)
    measure = measure or ("uniform" if base == "irm" else "empirical")
    _check_choice("measure", measure, MEASURES)
    infer = None
    if base == "minimax":
        if _v.check_num_envs(num_envs) < 2:
            raise ValueError(f"num_envs must be >= 2 to infer environments, got {num_envs}")
        infer = EnvInference(num_envs=num_envs, hidden=infer_hidden)
    elif num_envs is not None:
        _v.check_num_envs(num_envs)
    lam_net = LambdaNet(hidden=lam_hidden)
    cfg = GameConfig(
        name=METHOD_NAMES[(f"ood_tv_{base}", penalty)],
        apply_fn=apply_fn,
        init_fn=init_fn,
        loss_fn=loss,
        optimizer=_optimizer(optimizer, lr),
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
        defaults=_defaults(lr, lam, l2, anneal_steps, optimizer),
        penalty_schedule=penalty_schedule,
    )
    return make_solver(cfg)


def eiil(
    model: ModelLike,
    *,
    penalty: str = "tv_l2",
    loss: Callable = bce_with_logits,
    optimizer: OptimizerLike | None = None,
    infer_optimizer: OptimizerLike | None = None,
    reference_steps: int = 1000,
    infer_steps: int = 1000,
    lr: float = 1e-3,
    lam: float = 1e4,
    l2: float = 1e-3,
    anneal_steps: int = 200,
    rescale: bool = True,
) -> Solver:
    """EIIL (Creager, Jacobsen & Zemel 2021): environment inference for invariant learning.

    One solver runs the three phases in sequence, so a whole run is one `lax.scan` and sweeps vmap:

    1. ``reference_steps`` of ERM on a reference model (its own parameters, same architecture);
    2. ``infer_steps`` of ascent of per-example soft assignments q_i = σ(u_i) (Adam 1e-3 by default) on the
       IRMv1 penalty of the frozen reference over the two environments (q, 1 − q);
    3. IRM (``penalty``) on the hard partition q_i > ½ for the remaining steps; its warm-up
       (``anneal_steps``) counts from the start of this phase.

    The batch's ``envs`` are not read. Full batch only (the assignments are per example).

    Args:
      model: a flax.linen or flax.nnx Module (instance or class), or ``(init_fn, apply_fn)``.
      penalty: the IRM penalty of phase 3, ``"tv_l2"`` (EIIL as published) or ``"tv_l1"``.
      loss: per-example loss on logits.
      optimizer: optax optimizer of the reference and the final model; default
        ``inject_hyperparams(adam)(lr)``.
      infer_optimizer: optimizer of the assignments (applied to the negated gradient); default Adam(1e-3).
      reference_steps: steps of phase 1 (≥ 1).
      infer_steps: steps of phase 2 (≥ 1).
      lr: default Adam learning rate of Φ (with the default optimizer; sweepable as ``"lr"``).
      lam: default penalty weight λ after the warm-up (sweepable as ``"lam"``) of phase 3.
      l2: default weight of the L2 term Σ‖θ‖² (sweepable as ``"l2"``).
      anneal_steps: default warm-up length with the penalty off (sweepable as ``"anneal_steps"``),
        counted from the start of phase 3.
      rescale: divide the loss by 1 + λ when λ > 1.

    Returns:
      A `Solver`; ``fit``/``sweep`` need ``num_steps > reference_steps + infer_steps``.

    Raises:
      ValueError: unknown ``penalty``; phase lengths < 1; negative hyperparameters.
      TypeError: ``model``/``optimizer`` of the wrong type.
    """
    init_fn, apply_fn = _model_fns(model)
    _check_choice("penalty", penalty, ("tv_l1", "tv_l2"))
    for name, value in (("reference_steps", reference_steps), ("infer_steps", infer_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    common = dict(loss=loss, optimizer=optimizer, lr=lr, l2=l2)
    irm_solver = irm(
        model, penalty=penalty, num_envs=2, lam=lam, anneal_steps=anneal_steps, rescale=rescale, **common
    )
    erm_solver = erm(model, **common)
    return make_eiil(
        erm_solver=erm_solver,
        irm_solver=irm_solver,
        init_fn=init_fn,
        apply_fn=apply_fn,
        loss_fn=loss,
        infer_optimizer=infer_optimizer or optax.adam(1e-3),
        reference_steps=reference_steps,
        infer_steps=infer_steps,
        name="EIIL" if penalty == "tv_l2" else "EIIL-TV-l1",
    )
