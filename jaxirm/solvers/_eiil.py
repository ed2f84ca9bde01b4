"""EIIL (Creager, Jacobsen & Zemel 2021): environments inferred from a frozen ERM reference, then IRM.

`eiil` is the public factory (re-exported by `jaxirm.solvers`); `make_eiil` composes the three phases.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxirm import _validation as _v
from jaxirm import envs as _envs
from jaxirm import risks as _risks
from jaxirm.losses import bce_with_logits
from jaxirm.solvers._base import Batch, Solver, SolverState, finish_step, model_input, predict_with
from jaxirm.solvers._games import erm, irm
from jaxirm.solvers._models import ModelLike, OptimizerLike, features_first_fn, model_fns

__all__ = ["eiil"]


def _metrics(loss, penalty) -> tuple[jax.Array, jax.Array]:
    """A phase's (loss, penalty) metrics as float32 scalars, so the phases' outputs agree under x64 too."""
    return jnp.asarray(loss, jnp.float32), jnp.asarray(penalty, jnp.float32)


def make_eiil(
    *,
    erm_solver: Solver,
    irm_solver: Solver,
    init_fn: Callable,
    apply_fn: Callable,
    loss_fn: Callable,
    infer_optimizer: optax.GradientTransformation,
    reference_steps: int,
    infer_steps: int,
    name: str,
    apply_ft: Callable | None = None,
) -> Solver:
    """Composes three phases in one `Solver` so a whole EIIL run is one `lax.scan` (and vmaps in a sweep).

    1. steps [0, R): ERM on a reference model;
    2. steps [R, R + I): ascent of per-example soft assignments q_i = σ(u_i) on the IRMv1 penalty of the
       frozen reference over the two environments (q, 1 − q);
    3. steps ≥ R + I: the IRM solver on the hard partition q_i > ½ (its warm-up counts from the phase start).

    ``apply_ft``: the model on features-first inputs (`features_first_fn`), or None; the ERM and IRM solvers
    read the batch's features-first copies themselves.
    """
    defaults = dict(irm_solver.defaults)
    offset = reference_steps + infer_steps

    def inner(state: SolverState, params, opt_state, step, hparams) -> SolverState:
        return SolverState(step, params, opt_state, {}, {}, hparams, {}, state.diverged)

    def init(key: jax.Array, batch: Batch, hparams=None) -> SolverState:
        k_ref, k_irm, k_u = jax.random.split(key, 3)
        irm_state = irm_solver.init(k_irm, batch, hparams)
        ref_hp = {k: v for k, v in irm_state.hparams.items() if k in erm_solver.defaults}
        ref_state = erm_solver.init(k_ref, batch, ref_hp)
        u = jax.random.normal(k_u, (batch.x.shape[0],))  # EIIL's randn initialisation
        return irm_state._replace(
            dual_params={"ref": ref_state.params, "u": u},
            dual_opt_state={"ref": ref_state.opt_state, "u": infer_optimizer.init(u)},
        )

    def assignment(u):
        q = jax.nn.sigmoid(u)
        return jnp.stack([q, 1.0 - q], axis=1)

    def reference_phase(state, batch):
        hp = {k: v for k, v in state.hparams.items() if k in erm_solver.defaults}
        ref = inner(state, state.dual_params["ref"], state.dual_opt_state["ref"], state.step, hp)
        ref, m = erm_solver.step(ref, batch)
        dual = dict(state.dual_params, ref=ref.params)
        dual_opt = dict(state.dual_opt_state, ref=ref.opt_state)
        return state._replace(dual_params=dual, dual_opt_state=dual_opt), *_metrics(m["loss"], 0.0)

    def infer_phase(state, batch):
        model, x = model_input(apply_fn, apply_ft, batch)
        logits = model(state.dual_params["ref"], x)

        def penalty(u):
            # EIIL's objective as published: environment losses averaged over all n examples, i.e. the
            # released IRMv1 penalty Σ_e (m_e/n)² g_e², which rewards balanced partitions.
            weights = assignment(u)
            g = _risks.scale_grads(loss_fn, logits, batch.y, weights)
            return jnp.sum((_envs.env_measure(weights, kind="empirical") * g) ** 2)

        pen, grad = jax.value_and_grad(penalty)(state.dual_params["u"])
        upd, u_opt = infer_optimizer.update(-grad, state.dual_opt_state["u"], state.dual_params["u"])
        dual = dict(state.dual_params, u=optax.apply_updates(state.dual_params["u"], upd))
        dual_opt = dict(state.dual_opt_state, u=u_opt)
        return state._replace(dual_params=dual, dual_opt_state=dual_opt), *_metrics(0.0, pen)

    def irm_phase(state, batch):
        labels = (state.dual_params["u"] <= 0).astype(jnp.int32)  # env 0: q > 1/2
        sub = inner(state, state.params, state.opt_state, state.step - offset, state.hparams)
        sub, m = irm_solver.step(sub, batch._replace(envs=labels))
        return state._replace(params=sub.params, opt_state=sub.opt_state), *_metrics(m["loss"], m["penalty"])

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        phase = jnp.where(state.step < reference_steps, 0, jnp.where(state.step < offset, 1, 2))
        proposal, loss, pen = jax.lax.switch(phase, (reference_phase, infer_phase, irm_phase), state, batch)
        metrics = {"loss": loss, "penalty": pen, "phase": phase}
        return finish_step(state, proposal, metrics)

    return Solver(
        init=init,
        step=step,
        predict=predict_with(apply_fn),
        name=name,
        defaults=defaults,
        loss_kind=irm_solver.loss_kind,
        full_batch=True,
        min_steps=offset + 1,
        features_first=irm_solver.features_first,
    )


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
    init_fn, apply_fn = model_fns(model)
    _v.check_choice("penalty", penalty, ("tv_l1", "tv_l2"))
    reference_steps = _v.check_int("reference_steps", reference_steps, 1)
    infer_steps = _v.check_int("infer_steps", infer_steps, 1)
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
        apply_ft=features_first_fn(model),
        loss_fn=loss,
        infer_optimizer=infer_optimizer or optax.adam(1e-3),
        reference_steps=reference_steps,
        infer_steps=infer_steps,
        name="EIIL" if penalty == "tv_l2" else "EIIL-TV-l1",
    )
