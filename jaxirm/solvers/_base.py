"""The solver protocol and the one primal-dual step every game shares (private)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxirm import envs as _envs
from jaxirm import penalties as _pen
from jaxirm import risks as _risks
from jaxirm._types import Batch, PyTree
from jaxirm.models import flatten_params


class SolverState(NamedTuple):
    """Everything a solver carries from step to step; all leaves are arrays, so states stack under vmap.

    Attributes:
      step: int32 scalar, the number of steps taken.
      params: the model's parameters Φ.
      opt_state: the optax state of Φ's optimizer.
      dual_params: the ascending players' parameters, ``{"rho": ..., "psi": ...}`` (empty for ERM/IRM).
      dual_opt_state: their optax states, same keys.
      hparams: swept hyperparameters as float32 scalars (``lam``, ``l2``, ``anneal_steps``, …).
      aux: solver-specific arrays (z standardisation statistics, EIIL's inferred environments, …).
      diverged: bool scalar; once True the state is frozen at its last finite value.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    dual_params: PyTree
    dual_opt_state: PyTree
    hparams: dict
    aux: dict
    diverged: jax.Array


class Solver(NamedTuple):
    """A pair of pure functions, as in optax, plus the prediction function used for evaluation.

    Attributes:
      init: ``init(key, batch, hparams=None) -> SolverState``.
      step: ``step(state, batch) -> (state, metrics)``, metrics a dict of float32 scalars.
      predict: ``predict(state, x) -> logits`` of the model Φ.
      name: the method's name (e.g. ``"IRM-TV-l1"``).
      defaults: the default hyperparameters (the keys ``init`` accepts in ``hparams``).
      needs_z: whether batches must carry the auxiliary variable ``z`` (environment inference).
      num_envs: the number of environment labels the batches' ``envs`` use (None: weights or unused).
      uses_envs: whether the batches' ``envs`` are read at all.
      loss_kind: ``"binary"``, ``"regression"``, ``"multiclass"`` or None (a user's loss).
      full_batch: the solver keeps per-example state (EIIL's assignments), so it cannot take minibatches.
      min_steps: the fewest steps that train the model Φ at all (EIIL: reference + inference steps + 1);
        `jaxirm.fit` and `jaxirm.sweep` refuse a smaller ``num_steps`` instead of returning an untrained
        model.
    """

    init: Callable[..., SolverState]
    step: Callable[[SolverState, Batch], tuple[SolverState, dict]]
    predict: Callable[[SolverState, jax.Array], jax.Array]
    name: str
    defaults: Mapping[str, float]
    needs_z: bool = False
    num_envs: int | None = None
    uses_envs: bool = False
    loss_kind: str | None = None
    full_batch: bool = False
    min_steps: int = 1


def tree_where(cond: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    """Leafwise ``where(cond, new, old)`` for two pytrees of the same structure."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def freeze_if_nonfinite(state: SolverState, proposal: SolverState, *values: jax.Array) -> SolverState:
    """The divergence guard every solver's step ends with.

    Returns ``proposal`` when it is finite — its parameters, optimizer states (Adam's second moment can
    overflow to inf while the loss stays finite, zeroing every update), dual players and ``aux`` — and so
    are ``values`` (the step's loss terms); otherwise, or once the run has diverged, the last finite
    ``state``, flagged. The step counter advances either way.
    """
    parts = (proposal.params, proposal.opt_state, proposal.dual_params, proposal.dual_opt_state, proposal.aux)
    ok = all_finite((parts, values)) & ~state.diverged
    return tree_where(ok, proposal, state)._replace(step=state.step + 1, diverged=state.diverged | ~ok)


def all_finite(tree: PyTree) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite.

    One reduction over all the leaves, concatenated in their common dtype (XLA fuses the concatenation into
    the reduction), so covering the optimizer states as well costs next to nothing per step.
    """
    leaves = [
        jnp.ravel(leaf)
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    if not leaves:
        return jnp.asarray(True)
    dtype = jnp.result_type(*leaves)
    return jnp.all(jnp.isfinite(jnp.concatenate([leaf.astype(dtype) for leaf in leaves])))


def l2_norm_sq(params: PyTree) -> jax.Array:
    """Σ‖θ‖² over every parameter, biases included (the reference loop's L2 term)."""
    return sum((jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(params)), jnp.zeros(()))


def _map_learning_rate(opt_state: PyTree, fn: Callable[[jax.Array], jax.Array]) -> tuple[PyTree, list]:
    """Applies ``fn`` to every ``learning_rate`` of `optax.inject_hyperparams` states inside ``opt_state``.

    Returns the new state and the list of the values found (searching nested chains).
    """
    found = []

    def visit(node):
        hyper = getattr(node, "hyperparams", None)
        if isinstance(node, tuple) and isinstance(hyper, dict) and "learning_rate" in hyper:
            found.append(hyper["learning_rate"])
            return node._replace(hyperparams={**hyper, "learning_rate": fn(hyper["learning_rate"])})
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            return tuple(visit(child) for child in node)
        return node

    return visit(opt_state), found


def injected_learning_rate(opt_state: PyTree) -> jax.Array | None:
    """The ``learning_rate`` of an `optax.inject_hyperparams` state inside ``opt_state``, else None."""
    _, found = _map_learning_rate(opt_state, lambda lr: lr)
    return found[0] if found else None


def set_learning_rate(opt_state: PyTree, value: jax.Array) -> PyTree:
    """Replaces ``learning_rate`` inside an `optax.inject_hyperparams` state (searching nested chains).

    Raises:
      ValueError: no such hyperparameter exists in the state.
    """
    out, found = _map_learning_rate(opt_state, lambda lr: jnp.asarray(value, jnp.asarray(lr).dtype))
    if not found:
        raise ValueError(
            "lr can only be set when the optimizer is built with optax.inject_hyperparams, "
            "e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)"
        )
    return out


HPARAM_RULES = {"lam": ">= 0", "l2": ">= 0", "anneal_steps": ">= 0", "lr": "> 0"}


def check_hparams(
    solver_name: str,
    defaults: Mapping[str, Any],
    hparams: Mapping[str, Any] | None,
    *,
    scalar: bool = False,
) -> dict:
    """Checks hyperparameter names against ``defaults`` and concrete values against their ranges.

    Args:
      solver_name: for the messages.
      defaults: the solver's default hyperparameters (the valid names).
      hparams: overrides, scalars or arrays (e.g. a grid); traced values skip the range check.
      scalar: every value must be a scalar (shape ``()``, also for a tracer: under `jax.vmap` a swept value
        is a scalar per run), as ``init`` needs.

    Returns:
      ``defaults`` updated with ``hparams``.

    Raises:
      ValueError: an unknown name, or a concrete value out of range (``lam``, ``l2``, ``anneal_steps`` ≥ 0,
        ``lr`` > 0) or not finite; with ``scalar``, a value that is not a scalar.
      TypeError: ``hparams`` is not a mapping, or a value is not a number.
    """
    merged = dict(defaults)
    if hparams is not None and not isinstance(hparams, Mapping):
        raise TypeError(f"hparams must be a dict {{name: value}}, got {type(hparams).__name__}")
    for name, value in dict(hparams or {}).items():
        if name not in defaults:
            raise ValueError(f"hparams: unknown name {name!r} for {solver_name}; expected {sorted(defaults)}")
        if scalar and np.shape(value) != ():
            raise ValueError(
                f"hparams[{name!r}] must be a scalar, got shape {np.shape(value)}; to run several values "
                f"use jaxirm.sweep(..., grid={{{name!r}: [...]}})"
            )
        if not isinstance(value, jax.core.Tracer):
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"hparams[{name!r}] must be a number, got {value!r}") from None
            rule = HPARAM_RULES.get(name)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"hparams[{name!r}] must be finite, got {value!r}")
            if (rule == ">= 0" and np.any(arr < 0)) or (rule == "> 0" and np.any(arr <= 0)):
                raise ValueError(f"hparams[{name!r}] must be {rule}, got {value!r}")
        merged[name] = value
    return merged


PENALTIES = ("tv_l1", "tv_l2", "vrex")
MEASURES = ("uniform", "empirical")
RHO_UPDATES = ("warmup", "always", "after_warmup")


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """Static configuration of a game, closed over by the solver factories."""

    name: str
    apply_fn: Callable
    init_fn: Callable  # (key, x) -> params
    loss_fn: Callable
    optimizer: optax.GradientTransformation
    penalty: str | None  # None: ERM
    measure: str
    num_envs: int | None
    split: bool = False
    rescale: bool = True
    infer: Any = None  # flax module ρ(z) -> [n, E], or None
    infer_init_fn: Callable | None = None
    infer_optimizer: optax.GradientTransformation | None = None
    rho_updates: str = "warmup"
    lam_net: Any = None  # flax module λ_Ψ(vec Φ), or None
    lam_optimizer: optax.GradientTransformation | None = None
    defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)
    penalty_schedule: Callable | None = None  # optax schedule: step -> factor in [0, 1] multiplying lam
    dummy: str = "scalar"  # "vector": apply_fn returns [n, d] features, logits = their sum (IRM paper's w)


DUMMIES = ("scalar", "vector")


def logits_of(cfg: GameConfig, outputs: jax.Array) -> jax.Array:
    """The logits of the model's outputs: the outputs, or the sum of the features with a vector dummy."""
    return jnp.sum(outputs, axis=-1) if cfg.dummy == "vector" else outputs


def _penalty_value(cfg: GameConfig, outputs, y, envs, num_envs):
    """(risk term, penalty) of the current model on a batch with environments ``envs``.

    ``outputs`` are the model's logits, or its ``[n, d]`` features with a vector dummy.
    """
    logits = logits_of(cfg, outputs)
    kind = cfg.measure
    mu = _envs.env_measure(envs, num_envs, kind=kind)
    risks = _risks.env_risks(cfg.loss_fn, logits, y, envs, num_envs)
    if cfg.infer is not None:
        # Minimax: the risk term is the plain mean over the batch (the uniform measure over the fundamental
        # environments, ZIN's R(w∘Φ, 1/E)); only the penalty sees ρ.
        risk = jnp.mean(cfg.loss_fn(logits, y))
    else:
        risk = jnp.sum(mu * risks)
    if cfg.penalty == "vrex":
        pen = _pen.vrex(risks, mu)
    elif cfg.split:
        split = _risks.split_scale_grads(cfg.loss_fn, logits, y, envs, num_envs)
        pen = (_pen.tv_l1_split if cfg.penalty == "tv_l1" else _pen.tv_l2_split)(split, mu)
    else:
        if cfg.dummy == "vector":  # [E, d]: the IRM paper's vector dummy w
            g = _risks.feature_scale_grads(cfg.loss_fn, outputs, y, envs, num_envs)
        else:
            g = _risks.scale_grads(cfg.loss_fn, logits, y, envs, num_envs)
        pen = (_pen.tv_l1 if cfg.penalty == "tv_l1" else _pen.tv_l2)(g, mu)
    return risk, pen


def make_solver(cfg: GameConfig) -> Solver:
    """Builds ``init``/``step``/``predict`` for a game: Φ descends, then ρ and Ψ ascend at the new Φ."""
    defaults = dict(cfg.defaults)
    if cfg.penalty_schedule is not None and not callable(cfg.penalty_schedule):
        raise TypeError(
            f"penalty_schedule must be an optax schedule (a callable step -> factor), "
            f"got {type(cfg.penalty_schedule).__name__}"
        )

    def init(key: jax.Array, batch: Batch, hparams: Mapping[str, Any] | None = None) -> SolverState:
        hp = check_hparams(cfg.name, defaults, hparams, scalar=True)
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
        k_phi, k_rho, k_psi = jax.random.split(key, 3)
        params = cfg.init_fn(k_phi, batch.x)
        opt_state = cfg.optimizer.init(params)
        if "lr" in hp:
            opt_state = set_learning_rate(opt_state, hp["lr"])
        dual, dual_opt, aux = {}, {}, {}
        if cfg.infer is not None:
            z = jnp.asarray(batch.z, jnp.float32)
            aux["z_mean"] = jnp.mean(z, axis=0)
            aux["z_std"] = jnp.std(z, axis=0) + 1e-8
            dual["rho"] = cfg.infer_init_fn(k_rho, (z - aux["z_mean"]) / aux["z_std"])
            dual_opt["rho"] = cfg.infer_optimizer.init(dual["rho"])
        if cfg.lam_net is not None:
            dual["psi"] = cfg.lam_net.init(k_psi, flatten_params(params))
            dual_opt["psi"] = cfg.lam_optimizer.init(dual["psi"])
        return SolverState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=opt_state,
            dual_params=dual,
            dual_opt_state=dual_opt,
            hparams=hp,
            aux=aux,
            diverged=jnp.zeros((), bool),
        )

    def envs_of(dual, aux, batch):
        if cfg.infer is None:
            return batch.envs, cfg.num_envs
        z = (jnp.asarray(batch.z, jnp.float32) - aux["z_mean"]) / aux["z_std"]
        return cfg.infer.apply(dual["rho"], z), None

    def schedule_factor(state):
        """The penalty schedule at this step: 0/1 around the warm-up by default, or the user's schedule."""
        if cfg.penalty_schedule is None:
            on = state.step >= state.hparams["anneal_steps"].astype(jnp.int32)
            return jnp.where(on, 1.0, 0.0)
        return jnp.asarray(cfg.penalty_schedule(state.step), jnp.float32)

    def penalty_weight(state, params, psi):
        """The effective λ: ``lam`` times the schedule's factor (times λ_Ψ(vec Φ) in OOD-TV).

        The default schedule is 0 during the ``anneal_steps`` warm-up and 1 after; a user's optax schedule
        (``penalty_schedule``) replaces it.
        """
        weight = schedule_factor(state) * state.hparams["lam"]
        if cfg.lam_net is not None:
            weight = weight * cfg.lam_net.apply(psi, flatten_params(params))
        return weight

    def primal_objective(params, state, batch):
        outputs = cfg.apply_fn(params, batch.x)
        reg = l2_norm_sq(params)
        if cfg.penalty is None:
            risk = jnp.mean(cfg.loss_fn(logits_of(cfg, outputs), batch.y))
            pen = jnp.zeros(())
            weight = jnp.zeros(())
        else:
            envs, num = envs_of(state.dual_params, state.aux, batch)
            risk, pen = _penalty_value(cfg, outputs, batch.y, envs, num)
            weight = penalty_weight(state, params, state.dual_params.get("psi"))
        loss = risk + state.hparams["l2"] * reg + weight * jnp.maximum(pen, 0.0)
        if cfg.rescale:
            loss = jnp.where(weight > 1.0, loss / (1.0 + weight), loss)
        return loss, {"loss": loss, "risk": risk, "penalty": pen, "lam": weight}

    def dual_objective(dual, params, state, batch):
        """What ρ and Ψ maximise at the new Φ: the penalty term of the objective, lam·λ_Ψ(vec Φ)·pen
        (OOD-TV eqs. 14, 18), or pen alone without Ψ.

        The warm-up gate multiplies the primal objective only; when the dual players move is set by their
        schedules (``rho_updates``; Ψ after the warm-up), so ρ can ascend during the warm-up as in ZIN.
        """
        outputs = cfg.apply_fn(params, batch.x)
        envs, num = envs_of(dual, state.aux, batch)
        _, pen = _penalty_value(cfg, outputs, batch.y, envs, num)
        pen = jnp.maximum(pen, 0.0)
        if cfg.lam_net is not None:
            return state.hparams["lam"] * cfg.lam_net.apply(dual["psi"], flatten_params(params)) * pen
        return pen

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        grads, metrics = jax.grad(primal_objective, has_aux=True)(state.params, state, batch)
        updates, opt_state = cfg.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        dual, dual_opt = state.dual_params, state.dual_opt_state
        if dual:
            # Gauss-Seidel order (OOD-TV eqs. 17-18): the dual players ascend at the *new* Φ.
            dual_grads = jax.grad(dual_objective)(dual, params, state, batch)
            ascent = jax.tree_util.tree_map(jnp.negative, dual_grads)
            dual, dual_opt = dict(dual), dict(dual_opt)
            warm = schedule_factor(state) == 0.0  # the warm-up: the penalty is off
            if "rho" in dual:
                active = {"warmup": warm, "always": jnp.asarray(True), "after_warmup": ~warm}[cfg.rho_updates]
                upd, new_opt = cfg.infer_optimizer.update(ascent["rho"], dual_opt["rho"], dual["rho"])
                dual["rho"] = tree_where(active, optax.apply_updates(dual["rho"], upd), dual["rho"])
                dual_opt["rho"] = tree_where(active, new_opt, dual_opt["rho"])
            if "psi" in dual:
                upd, new_opt = cfg.lam_optimizer.update(ascent["psi"], dual_opt["psi"], dual["psi"])
                dual["psi"] = tree_where(~warm, optax.apply_updates(dual["psi"], upd), dual["psi"])
                dual_opt["psi"] = tree_where(~warm, new_opt, dual_opt["psi"])
        proposal = state._replace(
            params=params, opt_state=opt_state, dual_params=dual, dual_opt_state=dual_opt
        )
        new_state = freeze_if_nonfinite(state, proposal, metrics["loss"])
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
        metrics["diverged"] = new_state.diverged
        return new_state, metrics

    def predict(state: SolverState, x: jax.Array) -> jax.Array:
        return logits_of(cfg, cfg.apply_fn(state.params, x))

    return Solver(
        init=init,
        step=step,
        predict=predict,
        name=cfg.name,
        defaults=defaults,
        needs_z=cfg.infer is not None,
        num_envs=cfg.num_envs,
        uses_envs=cfg.penalty is not None and cfg.infer is None,
        loss_kind=getattr(cfg.loss_fn, "kind", None),
    )
