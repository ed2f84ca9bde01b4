"""LfF (Nam et al. 2020): a debiased model trained on the failures of a deliberately biased one.

Private module; the public factory `lff` is re-exported as `jaxirm.solvers.lff`.

Two models of the same architecture train side by side, from one loss, at every step:

* the biased model f_B descends the generalized cross-entropy GCE_q(f_B(x), y) = (1 − p_y(x)^q)/q, which
  up-weights the examples f_B already finds easy (∇GCE = p_y^q·∇CE), so f_B latches onto the shortcut;
* the debiased model f_D descends Σ_i W_i·CE(f_D(x_i), y_i)/n with the relative-difficulty score
  W_i = L_B,i / (L_B,i + L_D,i), where L_·,i are exponential moving averages (decay γ) of the two models'
  per-example cross-entropies, each divided by its maximum over the examples of the same class.

The EMAs are per-example state, so the solver is full batch (`Solver.full_batch`): a minibatch would need the
indices of its examples, which `Batch` does not carry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxirm import _validation as _v
from jaxirm.losses import bce_with_logits
from jaxirm.solvers._base import (
    Batch,
    Solver,
    SolverState,
    check_hparams,
    finish_step,
    l2_norm_sq,
    model_input,
    predict_with,
)
from jaxirm.solvers._models import (
    ModelLike,
    OptimizerLike,
    default_hparams,
    default_optimizer,
    features_first_fn,
    model_fns,
    set_learning_rate,
)

__all__ = ["lff", "gce", "relative_difficulty"]

_EPS = 1e-8  # the LfF code's guard in W = L_B / (L_B + L_D + eps)
_TINY = 1e-30


def gce(loss_fn: Callable, logits: jax.Array, y: jax.Array, q: jax.Array | float) -> jax.Array:
    """Generalized cross-entropy (Zhang & Sabuncu 2018), per example: (1 − p_y^q)/q.

    p_y = exp(−CE) is the probability the model gives the label, so GCE is computed from the cross-entropy
    without forming p_y (stable for confident logits); q → 0 recovers CE, q = 1 the mean absolute error.

    Args:
      loss_fn: `jaxirm.losses.bce_with_logits` (binary, ``logits`` ``[n]``) or
        `jaxirm.losses.softmax_cross_entropy` (``logits`` ``[n, C]``).
      logits: ``[n]`` or ``[n, C]``.
      y: ``[n]`` labels.
      q: the exponent, in (0, 1].

    Returns:
      ``[n]`` per-example losses.
    """
    ce = loss_fn(logits, y)
    return -jnp.expm1(-q * ce) / q


def _class_ids(y: jax.Array, logits: jax.Array) -> tuple[jax.Array, int]:
    """Integer class of each example and the number of classes (2 for a binary logit)."""
    if logits.ndim == 2:
        return y.astype(jnp.int32), logits.shape[1]
    return (y > 0.5).astype(jnp.int32), 2


def relative_difficulty(
    ema_b: jax.Array, ema_d: jax.Array, classes: jax.Array, num_classes: int
) -> jax.Array:
    """LfF's weights W_i = L̃_B,i / (L̃_B,i + L̃_D,i + 1e-8), L̃ = the EMA over its class's maximum.

    Args:
      ema_b: ``[n]`` moving averages of the biased model's per-example cross-entropy.
      ema_d: ``[n]`` the same for the debiased model.
      classes: ``[n]`` int class of each example.
      num_classes: number of classes C (static).

    Returns:
      ``[n]`` weights in [0, 1).
    """

    # Each class's maximum as a masked row reduction over [C, n] (C is small: XLA's scatter-max behind
    # segment_max is several times slower on CPU), read back per example by indexing the [C] maxima (a
    # second masked reduction, over the short class axis, cost LfF's sweep 12 % more).
    member = jnp.arange(num_classes, dtype=classes.dtype)[:, None] == classes[None, :]

    def normalised(ema):
        top = jnp.max(jnp.where(member, ema[None, :], -jnp.inf), axis=1)
        return ema / jnp.maximum(top[classes], _TINY)  # a class fitted exactly: 0 / tiny = 0, not NaN

    b, d = normalised(ema_b), normalised(ema_d)
    return b / (b + d + _EPS)


def make_lff(
    *,
    init_fn: Callable,
    apply_fn: Callable,
    loss_fn: Callable,
    optimizer: Any,
    defaults: Mapping[str, float],
    class_norm: bool,
    apply_ft: Callable | None = None,
) -> Solver:
    """Builds LfF's ``init``/``step``/``predict``; the factory `lff` checks the arguments. ``apply_ft``: the
    model on features-first inputs (`features_first_fn`), or None."""
    defaults = dict(defaults)

    def check_ranges(hp: Mapping[str, Any]) -> None:
        for name, lo, hi, closed_hi in (("q", 0.0, 1.0, True), ("ema", 0.0, 1.0, False)):
            value = hp.get(name)
            if value is None or isinstance(value, jax.core.Tracer):
                continue
            v = np.asarray(value, np.float64)
            if not (v > lo if name == "q" else v >= lo) or not (v <= hi if closed_hi else v < hi):
                interval = "(0, 1]" if name == "q" else "[0, 1)"
                raise ValueError(f"hparams[{name!r}] must lie in {interval}, got {value!r}")

    def init(key: jax.Array, batch: Batch, hparams: Mapping[str, Any] | None = None) -> SolverState:
        hp = check_hparams("LfF", defaults, hparams, scalar=True)
        check_ranges(hp)
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
        k_d, k_b = jax.random.split(key)
        params = init_fn(k_d, batch.x)
        bias = init_fn(k_b, batch.x)
        opt_state, bias_opt = optimizer.init(params), optimizer.init(bias)
        if "lr" in hp:
            opt_state = set_learning_rate(opt_state, hp["lr"])
            bias_opt = set_learning_rate(bias_opt, hp["lr"])
        n = batch.x.shape[0]
        return SolverState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=opt_state,
            dual_params={"bias": bias},
            dual_opt_state={"bias": bias_opt},
            hparams=hp,
            aux={"ema_b": jnp.zeros((n,), jnp.float32), "ema_d": jnp.zeros((n,), jnp.float32)},
            diverged=jnp.zeros((), bool),
        )

    def step(state: SolverState, batch: Batch) -> tuple[SolverState, dict]:
        hp = state.hparams
        bias = state.dual_params["bias"]
        model, x = model_input(apply_fn, apply_ft, batch)
        logits_b = model(bias, x)
        logits_d = model(state.params, x)
        # Per-example cross-entropies at the current parameters; their EMAs start at the first values
        # (LfF's EMA: the first visit of an example sets it, later ones average with decay γ).
        ce_b = jax.lax.stop_gradient(loss_fn(logits_b, batch.y)).astype(jnp.float32)
        ce_d = jax.lax.stop_gradient(loss_fn(logits_d, batch.y)).astype(jnp.float32)
        gamma = jnp.where(state.step > 0, hp["ema"], 0.0)
        ema_b = gamma * state.aux["ema_b"] + (1.0 - gamma) * ce_b
        ema_d = gamma * state.aux["ema_d"] + (1.0 - gamma) * ce_d
        classes, num_classes = _class_ids(batch.y, logits_d)
        if class_norm:
            weights = relative_difficulty(ema_b, ema_d, classes, num_classes)
        else:
            weights = ema_b / (ema_b + ema_d + _EPS)
        weights = jax.lax.stop_gradient(weights)

        def debiased_objective(params):
            logits = model(params, x)
            risk = jnp.mean(weights * loss_fn(logits, batch.y))
            return risk + hp["l2"] * l2_norm_sq(params), risk

        def biased_objective(params):
            logits = model(params, x)
            risk = jnp.mean(gce(loss_fn, logits, batch.y, hp["q"]))
            return risk + hp["l2"] * l2_norm_sq(params), risk

        (loss_d, risk_d), grads_d = jax.value_and_grad(debiased_objective, has_aux=True)(state.params)
        (loss_b, risk_b), grads_b = jax.value_and_grad(biased_objective, has_aux=True)(bias)
        upd, opt_state = optimizer.update(grads_d, state.opt_state, state.params)
        params = optax.apply_updates(state.params, upd)
        upd_b, bias_opt = optimizer.update(grads_b, state.dual_opt_state["bias"], bias)
        bias = optax.apply_updates(bias, upd_b)
        proposal = state._replace(
            params=params,
            opt_state=opt_state,
            dual_params={"bias": bias},
            dual_opt_state={"bias": bias_opt},
            aux={"ema_b": ema_b, "ema_d": ema_d},
        )
        loss = loss_d + loss_b
        metrics = {"loss": loss, "risk": risk_d, "bias_loss": risk_b, "weight": jnp.mean(weights)}
        return finish_step(state, proposal, metrics)

    return Solver(
        init=init,
        step=step,
        predict=predict_with(apply_fn),
        name="LfF",
        defaults=defaults,
        loss_kind=getattr(loss_fn, "kind", None),
        features_first=apply_ft is not None,
        full_batch=True,
    )


def lff(
    model: ModelLike,
    *,
    loss: Callable = bce_with_logits,
    optimizer: OptimizerLike | None = None,
    lr: float = 1e-3,
    l2: float = 1e-3,
    q: float = 0.7,
    ema: float = 0.7,
    class_norm: bool = True,
) -> Solver:
    """LfF, Learning from Failure (Nam et al. 2020): a debiased model trained on a biased model's failures.

    Each step, with ℓ_B,i, ℓ_D,i the per-example cross-entropies of the biased model f_B and the debiased
    model f_D (the model returned by ``predict``):

        L_B,i ← γ·L_B,i + (1 − γ)·ℓ_B,i,   L_D,i ← γ·L_D,i + (1 − γ)·ℓ_D,i      (L = ℓ at the first step)
        W_i = L̃_B,i / (L̃_B,i + L̃_D,i),   L̃_·,i = L_·,i / max_{j: y_j = y_i} L_·,j  (``class_norm``)
        f_B descends mean_i (1 − p_B(y_i|x_i)^q)/q + l2·‖θ_B‖²     (generalized cross-entropy)
        f_D descends mean_i W_i·ℓ_D,i + l2·‖θ_D‖²                  (W held constant)

    Both models take their step from the parameters of the same step (as the LfF code's single
    ``loss.backward()``). Full batch only: the moving averages are per example (`Solver.full_batch`).

    Args:
      model: a flax.linen Module, a flax.nnx Module (instance, or class / partial built per seed), or
        ``(init_fn(key, x) -> params, apply_fn(params, x) -> logits)``; f_B and f_D are two copies of it,
        initialised from different keys.
      loss: `jaxirm.losses.bce_with_logits` (binary, logits ``[n]``) or
        `jaxirm.losses.softmax_cross_entropy` (multi-class, logits ``[n, C]``): GCE needs class
        probabilities, so regression losses are refused.
      optimizer: an optax optimizer, used for both models (each with its own state); default
        ``inject_hyperparams(adam)(lr)``.
      lr: default learning rate of both models (with the default optimizer; sweepable as ``"lr"``).
      l2: default weight of the L2 term Σ‖θ‖² of each model (sweepable as ``"l2"``).
      q: default GCE exponent in (0, 1] (sweepable as ``"q"``); the LfF paper's 0.7.
      ema: default decay γ ∈ [0, 1) of the loss moving averages (sweepable as ``"ema"``); the LfF code's 0.7.
        γ = 0 uses the current losses.
      class_norm: divide each moving average by its class's maximum before forming W (the LfF code).

    Returns:
      A `Solver` with hyperparameters ``l2``, ``q``, ``ema`` (and ``lr``); ``full_batch`` is True.

    Raises:
      ValueError: a regression loss or a loss without a ``kind`` (a user's function); ``q`` outside (0, 1];
        ``ema`` outside [0, 1); negative or non-finite ``l2``, non-positive ``lr``.
      TypeError: ``model``/``optimizer`` of the wrong type; ``class_norm`` not a bool.

    References:
      Nam, Cha, Ahn, Lee & Shin, "Learning from Failure: Training Debiased Classifier from Biased
      Classifier", NeurIPS 2020, arXiv:2007.02561.
      Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels",
      NeurIPS 2018, arXiv:1805.07836.
    """
    init_fn, apply_fn = model_fns(model)
    kind = _v.loss_kind(loss)
    if kind not in (_v.BINARY, _v.MULTICLASS):
        raise ValueError(
            "loss must be jaxirm.losses.bce_with_logits or softmax_cross_entropy: LfF's generalized "
            f"cross-entropy needs class probabilities, got a loss of kind {kind!r}"
        )
    q = _v.check_number("q", q, low=0.0, high=1.0, open_low=True)
    ema = _v.check_number("ema", ema, low=0.0, high=1.0, open_high=True)
    if not isinstance(class_norm, bool):
        raise TypeError(f"class_norm must be a bool, got {type(class_norm).__name__}")
    defaults = {**default_hparams(optimizer, lr=lr, l2=l2), "q": q, "ema": ema}
    return make_lff(
        init_fn=init_fn,
        apply_fn=apply_fn,
        loss_fn=loss,
        optimizer=default_optimizer(optimizer, lr),
        defaults=defaults,
        class_norm=class_norm,
        apply_ft=features_first_fn(model),
    )
