"""TIVA (Tan, Lin et al. 2023): environments inferred from target-independent attributes, then IRM.

Private module; the public factory `tiva` is re-exported as `jaxirm.solvers.tiva`.

Three players share one step (so a run is one `lax.scan` and a sweep one vmap):

* a feature selector — stochastic gates g = clip(μ + σε + ½, 0, 1), ε ~ N(0, 1) (Yamada et al. 2020) on the
  attributes a = [x, z̃] — and a linear head h learn to predict y from g ⊙ a with a sparsity penalty on the
  open gates: min_{μ,h} mean_i ℓ(h(g ⊙ a_i), y_i) + β·mean_d Φ_N((μ_d + ½)/σ);
* the environment-inference net ρ reads the complementary attributes (1 − g) ⊙ a — those the selector
  finds irrelevant to y — and ascends the invariance penalty of the model Φ: max_ρ penalty(Φ, ρ);
* Φ descends mean_i ℓ(Φ(x_i), y_i) + l2·‖θ‖² + λ_k·penalty(Φ, ρ), λ_k = 0 during the warm-up.

The selector and ρ learn during the warm-up (``anneal_steps``) and are frozen after it, when the gates are
the noise-free g = clip(μ + ½, 0, 1) (the STG test-time gate) and ρ's partition fixes the penalty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxirm import _validation as _v
from jaxirm import envs as _envs
from jaxirm import penalties as _pen
from jaxirm import risks as _risks
from jaxirm._tree import when
from jaxirm.losses import bce_with_logits
from jaxirm.models import EnvInference
from jaxirm.solvers._base import (
    MEASURES,
    Batch,
    Solver,
    SolverState,
    check_hparams,
    finish_step,
    kept_envs,
    kept_envs_slot,
    l2_norm_sq,
    model_input,
    predict_with,
    refresh_kept_envs,
    standardised_z,
)
from jaxirm.solvers._models import (
    ModelLike,
    OptimizerLike,
    check_inferred_envs,
    check_optimizer,
    default_hparams,
    default_optimizer,
    features_first_fn,
    model_fns,
    set_learning_rate,
)

__all__ = ["tiva", "stochastic_gate"]


def stochastic_gate(mu: jax.Array, noise: jax.Array | float, sigma: float) -> jax.Array:
    """The STG gate clip(μ + σ·ε + ½, 0, 1) (Yamada et al. 2020); ``noise`` = 0 gives the test-time gate.

    Args:
      mu: ``[d]`` gate means.
      noise: ``[d]`` standard normal draws ε (or 0).
      sigma: the noise scale σ.

    Returns:
      ``[d]`` gates in [0, 1].
    """
    return jnp.clip(mu + sigma * noise + 0.5, 0.0, 1.0)


def _key_data(key: jax.Array) -> jax.Array:
    """Raw uint32 key data (a typed key cannot pass through `jnp.where` in the divergence freeze)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def make_tiva(
    *,
    init_fn: Callable,
    apply_fn: Callable,
    apply_ft: Callable | None,
    loss_fn: Callable,
    optimizer: Any,
    selector_optimizer: Any,
    infer_optimizer: Any,
    share_lr: tuple[bool, bool],
    infer: EnvInference,
    penalty: str,
    measure: str,
    use_z: bool,
    gate_sigma: float,
    rescale: bool,
    defaults: Mapping[str, float],
) -> Solver:
    """Builds TIVA's ``init``/``step``/``predict``; the factory `tiva` checks the arguments.

    ``share_lr``: whether the selector's and ρ's optimizers take the swept ``lr`` too (their defaults: the
    released code gives all three players the same learning rate). ``apply_ft``: Φ on features-first
    inputs (`features_first_fn`), or None.
    """
    defaults = dict(defaults)
    tv = _pen.tv_l1 if penalty == "tv_l1" else _pen.tv_l2

    def attributes(aux, batch: Batch) -> jax.Array:
        """[n, d_a] attributes a = [x, standardised z] (or x alone without ``use_z``)."""
        x = jnp.reshape(batch.x, (batch.x.shape[0], -1)).astype(jnp.float32)
        if not use_z:
            return x
        return jnp.concatenate([x, standardised_z(aux, batch, False)], axis=1)

    def layout(aux, batch: Batch) -> tuple[bool, jax.Array]:
        """(features_first, attributes): ``[d_a, n]`` from the batch's features-first copies when the loop
        filled them, else `attributes`."""
        if batch.xt is None or (use_z and batch.zt is None):
            return False, attributes(aux, batch)
        xt = batch.xt.astype(jnp.float32)
        if not use_z:
            return True, xt
        return True, jnp.concatenate([xt, standardised_z(aux, batch, True)], axis=0)

    def init(key: jax.Array, batch: Batch, hparams: Mapping[str, Any] | None = None) -> SolverState:
        hp = check_hparams("TIVA", defaults, hparams, scalar=True)
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
        k_phi, k_mu, k_w, k_rho, k_noise = jax.random.split(key, 5)
        params = init_fn(k_phi, batch.x)
        aux = {"noise_key": _key_data(k_noise)}
        if use_z:
            z = jnp.asarray(batch.z, jnp.float32)
            aux["z_mean"] = jnp.mean(z, axis=0)
            aux["z_std"] = jnp.std(z, axis=0) + 1e-8
        a = attributes(aux, batch)
        d = a.shape[1]
        out = jax.eval_shape(lambda p: apply_fn(p, batch.x[:1]), params)
        width = out.shape[-1] if len(out.shape) == 2 else 1
        bound = 1.0 / jnp.sqrt(d)  # torch's nn.Linear initialisation, as the released selector head
        selector = {
            "mu": 0.01 * jax.random.normal(k_mu, (d,)),
            "w": jax.random.uniform(k_w, (d, width), minval=-bound, maxval=bound),
            "b": jnp.zeros((width,)),
        }
        rho = infer.init(k_rho, a)
        # ρ's environments [E, n] on the training batch, kept once the selector and ρ are frozen
        dtype = jnp.result_type(selector["mu"], a)  # the gates' (float64 under jax_enable_x64)
        aux.update(kept_envs_slot(infer.num_envs, a.shape[0], dtype))
        opt_state = optimizer.init(params)
        sel_opt, rho_opt = selector_optimizer.init(selector), infer_optimizer.init(rho)
        if "lr" in hp:
            opt_state = set_learning_rate(opt_state, hp["lr"])
            if share_lr[0]:
                sel_opt = set_learning_rate(sel_opt, hp["lr"])
            if share_lr[1]:
                rho_opt = set_learning_rate(rho_opt, hp["lr"])
        return SolverState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=opt_state,
            dual_params={"selector": selector, "rho": rho},
            dual_opt_state={"selector": sel_opt, "rho": rho_opt},
            hparams=hp,
            aux=aux,
            diverged=jnp.zeros((), bool),
        )

    def penalty_of(logits, y, envs):
        g = _risks.scale_grads(loss_fn, logits, y, envs)
        return tv(g, _envs.env_measure(envs, kind=measure))

    def gated(ft: bool, g: jax.Array, a: jax.Array) -> jax.Array:
        """Gates ``[d_a]`` times the attributes, ``[d_a, n]`` features-first (``ft``) or ``[n, d_a]``."""
        return g[:, None] * a if ft else g * a

    def selector_loss(sel, ft, out_ndim, a, eps, y, stg_reg):
        """The selector's objective: predict y from the gated attributes, few gates open."""
        g = stochastic_gate(sel["mu"], eps, gate_sigma)
        if ft:  # [width, n]
            out = jax.lax.dot_general(sel["w"], gated(ft, g, a), (((0,), (0,)), ((), ()))) + sel["b"][:, None]
            out = out[0] if out_ndim == 1 else out.T
        else:
            out = gated(ft, g, a) @ sel["w"] + sel["b"]
            out = out[:, 0] if out_ndim == 1 else out
        fit_term = jnp.mean(loss_fn(out, y))
        open_gates = jnp.mean(jax.scipy.stats.norm.cdf((sel["mu"] + 0.5) / gate_sigma))
        return fit_term + stg_reg * open_gates

    def cached(aux, batch: Batch) -> bool:
        """Whether ρ's environments on ``batch`` may come from ``aux["envs"]`` (static): a batch the loops
        filled features-first (they `refresh` before such a run) of the size the state was made for."""
        ft = batch.xt is not None and (not use_z or batch.zt is not None)
        return "envs" in aux and ft and aux["envs"].shape[-1] == batch.xt.shape[-1]

    def current_envs(operands) -> jax.Array:
        """ρ((1 − g) ⊙ a) ``[n, E]`` at the current ρ and gates; ``operands`` = (ρ, gates, aux, batch)."""
        rho, gate, aux, batch = operands
        ft, a = layout(aux, batch)
        return infer.apply(rho, gated(ft, 1.0 - gate, a), features_first=ft)

    def learn(ft: bool, model: Callable, out_ndim: int, operands):
        """One warm-up update of ρ (ascending the penalty at the new Φ) and of the selector. ``operands`` =
        (players, inputs): nothing traced is closed over (see `when`); ``ft`` (the layout), ``model`` (Φ's
        apply function for it) and ``out_ndim`` are static."""
        (sel, sel_opt, rho, rho_opt), (aux, batch, gate, eps, params, stg_reg) = operands
        _, a = layout(aux, batch)
        rho_input, x, y = (
            gated(ft, 1.0 - gate, a),
            model_input(apply_fn, apply_ft if ft else None, batch)[1],
            batch.y,
        )
        logits_new = jax.lax.stop_gradient(model(params, x))

        def dual(rho_params):
            envs = infer.apply(rho_params, rho_input, features_first=ft)
            return jnp.maximum(penalty_of(logits_new, y, envs), 0.0)

        rho_grads = jax.grad(dual)(rho)
        upd, rho_opt = infer_optimizer.update(jax.tree_util.tree_map(jnp.negative, rho_grads), rho_opt, rho)
        rho = optax.apply_updates(rho, upd)
        sel_grads = jax.grad(selector_loss)(sel, ft, out_ndim, a, eps, y, stg_reg)
        upd, sel_opt = selector_optimizer.update(sel_grads, sel_opt, sel)
        return optax.apply_updates(sel, upd), sel_opt, rho, rho_opt

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        hp = state.hparams
        warm = state.step < hp["anneal_steps"].astype(jnp.int32)
        ft, a = layout(state.aux, batch)  # (``a`` only for the metrics: XLA drops it from the other steps)
        selector, rho, aux = state.dual_params["selector"], state.dual_params["rho"], state.aux
        noise_key = jax.random.fold_in(jax.random.wrap_key_data(state.aux["noise_key"]), state.step)
        eps = jax.random.normal(noise_key, selector["mu"].shape)
        # The gates ρ reads: noisy while the selector learns, the test-time gates once it is frozen.
        gate = jax.lax.stop_gradient(stochastic_gate(selector["mu"], jnp.where(warm, eps, 0.0), gate_sigma))
        ops = (rho, gate, aux, batch)
        if cached(aux, batch):
            # ρ's environments are recomputed while the selector and ρ learn and once after (the noise-free
            # gates at the frozen players), then kept: every run of the batch past its warm-up skips them.
            kept, aux = kept_envs(aux, warm, lambda o: current_envs(o).T, ops)
            envs = kept.T
        else:
            envs = current_envs(ops)
        envs = jax.lax.stop_gradient(envs)
        weight = jnp.where(warm, 0.0, hp["lam"])

        model, x = model_input(apply_fn, apply_ft if ft else None, batch)
        out_ndim = jax.eval_shape(model, state.params, x).ndim

        def primal(params):
            logits = model(params, x)
            risk = jnp.mean(loss_fn(logits, batch.y))
            pen = penalty_of(logits, batch.y, envs)
            loss = risk + hp["l2"] * l2_norm_sq(params) + weight * jnp.maximum(pen, 0.0)
            if rescale:
                loss = jnp.where(weight > 1.0, loss / (1.0 + weight), loss)
            return loss, (risk, pen)

        (loss, (risk, pen)), grads = jax.value_and_grad(primal, has_aux=True)(state.params)
        upd, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, upd)

        # During the warm-up ρ ascends the penalty at the new Φ (Gauss-Seidel, as the other games) and the
        # selector learns; after it both are frozen, and a batch of runs all past it skips their updates.
        players = (selector, state.dual_opt_state["selector"], rho, state.dual_opt_state["rho"])
        inputs = (aux, batch, gate, eps, params, hp["stg_reg"])
        new = when(warm, functools.partial(learn, ft, model, out_ndim), lambda ops: ops[0], (players, inputs))
        dual_params = {"selector": new[0], "rho": new[2]}
        dual_opt = {"selector": new[1], "rho": new[3]}
        # the selector's loss for the metrics (XLA drops it from the steps whose metrics are not kept)
        sel_value = selector_loss(selector, ft, out_ndim, a, eps, batch.y, hp["stg_reg"])
        proposal = state._replace(
            params=params, opt_state=opt_state, dual_params=dual_params, dual_opt_state=dual_opt, aux=aux
        )
        metrics = {
            "loss": loss,
            "risk": risk,
            "penalty": pen,
            "lam": weight,
            "selector_loss": sel_value,
            "open_gates": jnp.mean(gate > 0.0),
            "env_share": jnp.max(jnp.mean(envs, axis=0)),
        }
        return finish_step(state, proposal, metrics, derived=("envs",))

    return Solver(
        init=init,
        step=step,
        predict=predict_with(apply_fn),
        name="TIVA",
        defaults=defaults,
        needs_z=use_z,
        loss_kind=getattr(loss_fn, "kind", None),
        features_first=True,
        refresh=refresh_kept_envs,
    )


def tiva(
    model: ModelLike,
    *,
    penalty: str = "tv_l2",
    num_envs: int = 2,
    infer_hidden: int = 16,
    use_z: bool = True,
    gate_sigma: float = 1.0,
    loss: Callable = bce_with_logits,
    measure: str = "empirical",
    optimizer: OptimizerLike | None = None,
    selector_optimizer: OptimizerLike | None = None,
    infer_optimizer: OptimizerLike | None = None,
    lr: float = 1e-3,
    lam: float = 1e4,
    l2: float = 1e-3,
    anneal_steps: int = 200,
    stg_reg: float = 1e-3,
    rescale: bool = True,
) -> Solver:
    """TIVA (Tan, Lin et al. 2023): invariant learning with environments inferred from attributes that the
    feature selector finds independent of the target.

    With attributes a = [x, z̃] (z̃ the auxiliary z standardised with the statistics of the batch given to
    ``init``; a = x when ``use_z=False``) and gates g = clip(μ + σε + ½, 0, 1), each step during the
    warm-up (``anneal_steps``):

        Φ descends   mean ℓ(Φ(x), y) + l2·‖θ‖²                                   (ERM: λ_k = 0)
        ρ ascends    penalty(Φ, ρ((1 − g) ⊙ a))                                   (at the new Φ)
        μ, h descend mean ℓ(h(g ⊙ a), y) + stg_reg·mean_d Φ_N((μ_d + ½)/σ)       (h linear)

    and after it, with the selector and ρ frozen (noise-free gates g = clip(μ + ½, 0, 1)):

        Φ descends   mean ℓ(Φ(x), y) + l2·‖θ‖² + lam·penalty(Φ, ρ((1 − g) ⊙ a))

    divided by 1 + lam when lam > 1 and ``rescale``. penalty = Σ_e μ_e g_e² (``"tv_l2"``, IRMv1, TIVA as
    published) or (Σ_e μ_e |g_e|)² (``"tv_l1"``) over the E soft environments ρ infers, μ the ρ-induced
    measure (``"empirical"``, as `minimax`). Φ sees x only, so ``predict`` needs no z.

    Args:
      model: a flax.linen or flax.nnx Module (instance or class), or ``(init_fn, apply_fn)``.
      penalty: ``"tv_l2"`` (TIVA) or ``"tv_l1"``.
      num_envs: number of inferred environments E ≥ 2 (sigmoid for 2, softmax for more).
      infer_hidden: hidden width of ρ.
      use_z: append the auxiliary z to the attributes (the OOD-TV paper's protocol and the released code);
        False is the TIVA paper's setting without domain information (batches then need no z).
      gate_sigma: σ of the stochastic gates: the released TIVA code's 1.0 (the STG paper uses 0.5).
      loss: per-example loss on logits (binary, multi-class or squared error).
      measure: ``"empirical"`` (ρ-induced, default) or ``"uniform"``.
      optimizer: optax optimizer for Φ; default ``inject_hyperparams(adam)(lr)``.
      selector_optimizer: optimizer of the gates μ and the head h; default Adam with Φ's ``lr`` (swept with
        it), as the released code.
      infer_optimizer: optimizer of ρ (applied to the negated gradient); default Adam with Φ's ``lr``.
      lr: default learning rate (with the default optimizers; sweepable as ``"lr"``).
      lam: default penalty weight after the warm-up (sweepable as ``"lam"``).
      l2: default weight of the L2 term Σ‖θ‖² of Φ (sweepable as ``"l2"``).
      anneal_steps: default warm-up length (sweepable as ``"anneal_steps"``): the selector and ρ learn, Φ
        runs ERM.
      stg_reg: default weight β of the gates' sparsity term (sweepable as ``"stg_reg"``); the released
        code's 0.001.
      rescale: divide the loss by 1 + λ when λ > 1 (the released code's convention).

    Returns:
      A `Solver`; its batches need ``z`` when ``use_z``.

    Raises:
      ValueError: unknown ``penalty``/``measure``; ``num_envs`` < 2; non-positive ``gate_sigma``; negative or
        non-finite hyperparameters.
      TypeError: ``model``/optimizers of the wrong type; ``use_z`` not a bool.

    References:
      Tan, Lin, Zhu, Qu, Qiu, Xu, Cui & Qi, "Provably Invariant Learning without Domain Information",
      ICML 2023 (PMLR 202).
      Yamada, Lindenbaum, Negahban & Kluger, "Feature Selection using Stochastic Gates", ICML 2020,
      arXiv:1810.04247.
      Lin, Zhu, Tan & Cui, "ZIN: When and How to Learn Invariance Without Environment Partition?",
      NeurIPS 2022, arXiv:2203.05818.
    """
    init_fn, apply_fn = model_fns(model)
    _v.loss_kind(loss)
    _v.check_choice("penalty", penalty, ("tv_l1", "tv_l2"))
    _v.check_choice("measure", measure, MEASURES)
    num_envs = check_inferred_envs(num_envs)
    infer_hidden = _v.check_int("infer_hidden", infer_hidden, 1)
    if not isinstance(use_z, bool):
        raise TypeError(f"use_z must be a bool, got {type(use_z).__name__}")
    gate_sigma = _v.check_number("gate_sigma", gate_sigma, low=0.0, open_low=True)
    defaults = default_hparams(optimizer, lr=lr, l2=l2, lam=lam, anneal_steps=anneal_steps)
    defaults["stg_reg"] = _v.check_number("stg_reg", stg_reg, low=0.0)
    shared = optax.inject_hyperparams(optax.adam)(learning_rate=float(lr))
    share_lr = (selector_optimizer is None and "lr" in defaults, infer_optimizer is None and "lr" in defaults)
    return make_tiva(
        init_fn=init_fn,
        apply_fn=apply_fn,
        apply_ft=features_first_fn(model),
        loss_fn=loss,
        optimizer=default_optimizer(optimizer, lr),
        selector_optimizer=shared
        if selector_optimizer is None
        else check_optimizer("selector_optimizer", selector_optimizer),
        infer_optimizer=shared
        if infer_optimizer is None
        else check_optimizer("infer_optimizer", infer_optimizer),
        share_lr=share_lr,
        infer=EnvInference(num_envs=num_envs, hidden=infer_hidden),
        penalty=penalty,
        measure=measure,
        use_z=use_z,
        gate_sigma=gate_sigma,
        rescale=rescale,
        defaults=defaults,
    )
