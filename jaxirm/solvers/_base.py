"""The solver protocol and the one primal-dual step every game shares (private)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxirm import envs as _envs
from jaxirm import penalties as _pen
from jaxirm import risks as _risks
from jaxirm._tree import all_finite, tree_where, when
from jaxirm._types import Batch, PyTree, Solver, SolverState
from jaxirm._validation import check_hparams
from jaxirm.models import EnvInference, flatten_params
from jaxirm.solvers._models import set_learning_rate


def freeze_if_nonfinite(
    state: SolverState, proposal: SolverState, derived: tuple[str, ...] = ()
) -> SolverState:
    """The divergence guard every solver's step ends with.

    Returns ``proposal`` when it is finite — its parameters, optimizer states (Adam's second moment can
    overflow to inf while the loss stays finite, zeroing every update), dual players and ``aux`` —
    otherwise, or once the run has diverged, the last finite ``state``, flagged. The step counter advances
    either way.

    The loss itself is not part of the check: a non-finite loss makes its gradients, and so the parameters
    and optimizer moments the step produces, non-finite. Leaving it out lets XLA skip computing the loss's
    value (softplus and friends, a quarter of a step) on every step whose metrics are not kept, i.e. all
    but the last step of each evaluation chunk in `jaxirm.fit` and `jaxirm.sweep`. Nor are the ``aux``
    entries named in ``derived``: values computed from the checked ones (finite when they are), such as a
    game's kept ρ(z), whose check would cost a pass over ``[E, n]`` per step.
    """
    aux = {k: v for k, v in proposal.aux.items() if k not in derived}
    parts = (proposal.params, proposal.opt_state, proposal.dual_params, proposal.dual_opt_state, aux)
    ok = all_finite(parts) & ~state.diverged
    return tree_where(ok, proposal, state)._replace(step=state.step + 1, diverged=state.diverged | ~ok)


def finish_step(
    state: SolverState, proposal: SolverState, metrics: dict, derived: tuple[str, ...] = ()
) -> tuple[SolverState, dict]:
    """The end of every solver's step: the divergence guard (`freeze_if_nonfinite`, ``derived`` as there)
    and the metrics as float32 scalars with ``diverged``."""
    new_state = freeze_if_nonfinite(state, proposal, derived)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    metrics["diverged"] = new_state.diverged
    return new_state, metrics


def predict_with(apply_fn: Callable) -> Callable[[SolverState, jax.Array], jax.Array]:
    """``predict(state, x) = apply_fn(state.params, x)``: the prediction of a solver whose model is Φ."""

    def predict(state: SolverState, x: jax.Array) -> jax.Array:
        return apply_fn(state.params, x)

    return predict


def model_input(apply_fn: Callable, apply_ft: Callable | None, batch: Batch) -> tuple[Callable, jax.Array]:
    """``(apply, inputs)`` of the model Φ on a batch: ``(apply_ft, batch.xt)`` when the model takes
    features-first inputs (``apply_ft``, from `features_first_fn`) and the loop filled the copy, else
    ``(apply_fn, batch.x)``."""
    if apply_ft is not None and batch.xt is not None:
        return apply_ft, batch.xt
    return apply_fn, batch.x


def standardised_z(aux: dict, batch: Batch, features_first: bool) -> jax.Array:
    """The batch's z standardised with the statistics ``aux["z_mean"]``/``aux["z_std"]`` taken at ``init``:
    ``[k, n]`` from ``batch.zt`` when ``features_first``, else ``[n, k]``."""
    if features_first:
        return (batch.zt - aux["z_mean"][:, None]) / aux["z_std"][:, None]
    return (jnp.asarray(batch.z, jnp.float32) - aux["z_mean"]) / aux["z_std"]


def kept_envs_slot(num_envs: int, n: int, dtype: Any = jnp.float32) -> dict:
    """The ``aux`` entries of a solver that keeps ρ's environments between full-batch steps (`kept_envs`):
    ``envs`` ``[E, n]`` and ``envs_stale``, stale until a step computes them."""
    return {"envs": jnp.zeros((num_envs, n), dtype), "envs_stale": jnp.ones((), bool)}


def refresh_kept_envs(state: SolverState, batch: Batch) -> SolverState:
    """`Solver.refresh` of such a solver: before a run of steps on one batch, the kept environments are of
    another batch (or none yet), so the first step recomputes them."""
    if "envs" not in state.aux:  # a state from before the environments were kept
        return state
    return state._replace(aux={**state.aux, "envs_stale": jnp.ones((), bool)})


def kept_envs(aux: dict, moving: jax.Array, compute: Callable, operands: Any) -> tuple[jax.Array, dict]:
    """ρ's environments ``[E, n]`` for this step, and the ``aux`` that keeps them for the next.

    ``compute(operands)`` (ρ's environments at the current players) runs only where the kept ones are stale
    or ``moving`` (the players they depend on move at this step), through `when`: a batch of runs all of
    whose players are frozen skips it. ``moving`` also marks them stale for the next step. ``compute`` must
    not close over traced values (pass them in ``operands``).
    """
    dtype = aux["envs"].dtype
    kept = when(
        aux["envs_stale"] | moving,
        lambda ops: compute(ops[0]).astype(dtype),
        lambda ops: ops[1],
        (operands, aux["envs"]),
    )
    return kept, {**aux, "envs": kept, "envs_stale": moving}


def l2_norm_sq(params: PyTree) -> jax.Array:
    """Σ‖θ‖² over every parameter, biases included (the reference loop's L2 term)."""
    return sum((jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(params)), jnp.zeros(()))


PENALTIES = ("tv_l1", "tv_l2", "vrex", "tv")
TV_PENALTIES = ("tv_l1", "tv_l2", "tv")  # "tv": the norm is the hyperparameter ``tv_norm`` (1 or 2)
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
    apply_ft: Callable | None = None  # (params, xt [d, n]) -> outputs: apply_fn on features-first inputs


DUMMIES = ("scalar", "vector")


def logits_of(cfg: GameConfig, outputs: jax.Array) -> jax.Array:
    """The logits of the model's outputs: the outputs, or the sum of the features with a vector dummy."""
    return jnp.sum(outputs, axis=-1) if cfg.dummy == "vector" else outputs


def _tv(cfg: GameConfig, hparams: Mapping[str, jax.Array], l1: Callable, l2: Callable, *args) -> jax.Array:
    """The TV penalty of the game's norm: ``l1(*args)`` or ``l2(*args)``, picked by ``cfg.penalty``, or for
    ``penalty="tv"`` by the data ``hparams["tv_norm"]`` (1 or 2): both are computed (a few operations on the
    ``[E]`` moments) and one is selected exactly, so the two norms share one compiled program."""
    if cfg.penalty == "tv":
        return jnp.where(hparams["tv_norm"] == 1.0, l1(*args), l2(*args))
    return (l1 if cfg.penalty == "tv_l1" else l2)(*args)


def _penalty_value(cfg: GameConfig, hparams, outputs, y, envs, num_envs):
    """(risk term, penalty) of the current model on a batch with environments ``envs``.

    ``outputs`` are the model's logits, or its ``[n, d]`` features with a vector dummy; ``hparams`` the
    run's (``tv_norm``).
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
        pen = _tv(cfg, hparams, _pen.tv_l1_split, _pen.tv_l2_split, split, mu)
    else:
        if cfg.dummy == "vector":  # [E, d]: the IRM paper's vector dummy w
            g = _risks.feature_scale_grads(cfg.loss_fn, outputs, y, envs, num_envs)
        else:
            g = _risks.scale_grads(cfg.loss_fn, logits, y, envs, num_envs)
        pen = _tv(cfg, hparams, _pen.tv_l1, _pen.tv_l2, g, mu)
    return risk, pen


def make_solver(cfg: GameConfig) -> Solver:
    """Builds ``init``/``step``/``predict`` for a game: Φ descends, then ρ and Ψ ascend at the new Φ."""
    defaults = dict(cfg.defaults)
    infer_ft = type(cfg.infer) is EnvInference  # ρ can run on features-first z
    # ρ's environments on the training batch are kept between full-batch steps when ρ stops moving (ZIN's
    # warm-up schedule): a frozen ρ's forward pass is then never recomputed. When ρ moves at every step the
    # primal's ρ(z) and the ascent's are one computation for XLA, and a kept copy only costs.
    keep_envs = infer_ft and cfg.rho_updates != "always"
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
            if keep_envs:  # ρ's environments [E, n] on the batch, kept while ρ does not move
                aux.update(kept_envs_slot(cfg.infer.num_envs, z.shape[0]))
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

    def cached(aux, batch) -> bool:
        """Whether ρ's environments on ``batch`` may come from ``aux["envs"]`` (static): a batch the loops
        filled features-first (they `refresh` before such a run) of the size the state was made for."""
        return "envs" in aux and batch.zt is not None and aux["envs"].shape[-1] == batch.zt.shape[-1]

    def current_envs(operands):
        """ρ(z) ``[E, n]`` at the current ρ; ``operands`` = (ρ, aux, batch) (`when`)."""
        rho, aux, batch = operands
        envs, _ = envs_of({"rho": rho}, aux, batch)
        return envs.T

    def envs_of(dual, aux, batch):
        if cfg.infer is None:
            return batch.envs, cfg.num_envs
        if infer_ft and batch.zt is not None:
            return cfg.infer.apply(dual["rho"], standardised_z(aux, batch, True), features_first=True), None
        return cfg.infer.apply(dual["rho"], standardised_z(aux, batch, False)), None

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

    def primal_objective(params, state, batch, kept):
        """Φ's objective; ``kept``: ρ's environments ``[E, n]`` on the batch, or None (computed here)."""
        apply, x = model_input(cfg.apply_fn, cfg.apply_ft, batch)
        outputs = apply(params, x)
        reg = l2_norm_sq(params)
        if cfg.penalty is None:
            risk = jnp.mean(cfg.loss_fn(logits_of(cfg, outputs), batch.y))
            pen = jnp.zeros(())
            weight = jnp.zeros(())
        else:
            if kept is not None:
                envs, num = kept.T, None
            else:
                envs, num = envs_of(state.dual_params, state.aux, batch)
            risk, pen = _penalty_value(cfg, state.hparams, outputs, batch.y, envs, num)
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
        apply, x = model_input(cfg.apply_fn, cfg.apply_ft, batch)
        outputs = apply(params, x)
        envs, num = envs_of(dual, state.aux, batch)
        _, pen = _penalty_value(cfg, state.hparams, outputs, batch.y, envs, num)
        pen = jnp.maximum(pen, 0.0)
        if cfg.lam_net is not None:
            return state.hparams["lam"] * cfg.lam_net.apply(dual["psi"], flatten_params(params)) * pen
        return pen

    def ascend(operands):
        """The dual players' ascent at the new Φ, each where it is ``active``; ``operands`` = ((dual params,
        their optimizer states), (new Φ, state, batch, active)) — nothing traced is closed over (`when`)."""
        (dual, dual_opt), (params, state, batch, active) = operands
        dual_grads = jax.grad(dual_objective)(dual, params, state, batch)
        ascent = jax.tree_util.tree_map(jnp.negative, dual_grads)
        dual, dual_opt = dict(dual), dict(dual_opt)
        optimizers = {"rho": cfg.infer_optimizer, "psi": cfg.lam_optimizer}
        for name, on in active.items():
            upd, new_opt = optimizers[name].update(ascent[name], dual_opt[name], dual[name])
            dual[name] = tree_where(on, optax.apply_updates(dual[name], upd), dual[name])
            dual_opt[name] = tree_where(on, new_opt, dual_opt[name])
        return dual, dual_opt

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        dual, dual_opt, aux = state.dual_params, state.dual_opt_state, state.aux
        # When the dual players move (Gauss-Seidel order, OOD-TV eqs. 17-18: after Φ, at the new Φ), each
        # while its schedule lets it.
        warm = schedule_factor(state) == 0.0  # the warm-up: the penalty is off
        active = {}
        if "rho" in dual:
            active["rho"] = {"warmup": warm, "always": jnp.asarray(True), "after_warmup": ~warm}[
                cfg.rho_updates
            ]
        if "psi" in dual:
            active["psi"] = ~warm
        kept = None
        if cached(aux, batch):
            # ρ(z) is recomputed only while ρ moves (it moved at the last step or moves at this one) or on a
            # new batch (`refresh`); a frozen ρ's forward pass is skipped by every run of the batch (`when`).
            kept, aux = kept_envs(aux, active["rho"], current_envs, (dual["rho"], aux, batch))
        grads, metrics = jax.grad(primal_objective, has_aux=True)(state.params, state, batch, kept)
        updates, opt_state = cfg.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if dual:
            # a batch of runs none of whose players moves skips the ascent (`when`)
            moving = functools.reduce(jnp.logical_or, active.values())
            dual, dual_opt = when(
                moving, ascend, lambda ops: ops[0], ((dual, dual_opt), (params, state, batch, active))
            )
        proposal = state._replace(
            params=params, opt_state=opt_state, dual_params=dual, dual_opt_state=dual_opt, aux=aux
        )
        return finish_step(state, proposal, metrics, derived=("envs",))

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
        features_first=cfg.apply_ft is not None or infer_ft,
        refresh=refresh_kept_envs if keep_envs else None,
    )
