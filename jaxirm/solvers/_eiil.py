"""EIIL (Creager, Jacobsen & Zemel 2021): environments inferred from a frozen ERM reference, then IRM.

Private module; the public factory is `jaxirm.solvers.eiil`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxirm import envs as _envs
from jaxirm import risks as _risks
from jaxirm.solvers._base import Batch, Solver, SolverState, freeze_if_nonfinite


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
) -> Solver:
    """Composes three phases in one `Solver` so a whole EIIL run is one `lax.scan` (and vmaps in a sweep).

    1. steps [0, R): ERM on a reference model;
    2. steps [R, R + I): ascent of per-example soft assignments q_i = σ(u_i) on the IRMv1 penalty of the
       frozen reference over the two environments (q, 1 − q);
    3. steps ≥ R + I: the IRM solver on the hard partition q_i > ½ (its warm-up counts from the phase start).
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
        return state._replace(dual_params=dual, dual_opt_state=dual_opt), m["loss"], jnp.zeros(())

    def infer_phase(state, batch):
        logits = apply_fn(state.dual_params["ref"], batch.x)

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
        return state._replace(dual_params=dual, dual_opt_state=dual_opt), jnp.zeros(()), pen

    def irm_phase(state, batch):
        labels = (state.dual_params["u"] <= 0).astype(jnp.int32)  # env 0: q > 1/2
        sub = inner(state, state.params, state.opt_state, state.step - offset, state.hparams)
        sub, m = irm_solver.step(sub, batch._replace(envs=labels))
        return state._replace(params=sub.params, opt_state=sub.opt_state), m["loss"], m["penalty"]

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        phase = jnp.where(state.step < reference_steps, 0, jnp.where(state.step < offset, 1, 2))
        proposal, loss, pen = jax.lax.switch(phase, (reference_phase, infer_phase, irm_phase), state, batch)
        new_state = freeze_if_nonfinite(state, proposal, loss, pen)
        metrics = {
            "loss": loss.astype(jnp.float32),
            "penalty": pen.astype(jnp.float32),
            "phase": phase.astype(jnp.float32),
            "diverged": new_state.diverged,
        }
        return new_state, metrics

    def predict(state: SolverState, x: jax.Array) -> jax.Array:
        return apply_fn(state.params, x)

    return Solver(
        init=init,
        step=step,
        predict=predict,
        name=name,
        defaults=defaults,
        needs_z=False,
        num_envs=None,
        uses_envs=False,
        loss_kind=irm_solver.loss_kind,
        full_batch=True,
        min_steps=offset + 1,
    )
