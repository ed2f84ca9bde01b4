"""The pipeline checker of `jaxirm.testing`: `check_env_pipeline`, loss -> `scale_grads` -> penalty.

The variants of the input (relabelled environments, permuted and padded examples) are built in numpy; the
pipeline runs under module-level `jax.jit`, so that repeated checks of the same functions and shapes compile
once.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxirm import _validation as _v
from jaxirm.envs import MEASURE_KINDS, env_measure
from jaxirm.risks import scale_grads
from jaxirm.testing._properties import assert_close, call, dev, env_perms, fail, scalar


def _pipeline(penalty_fn, loss_fn, kind, num_envs, logits, y, envs):
    grads = scale_grads(loss_fn, logits, y, envs, num_envs)
    return penalty_fn(grads, env_measure(envs, num_envs, kind))


def _row_perms(n: int) -> list[tuple[str, np.ndarray]]:
    if n < 2:
        return []
    return [("reversal", np.arange(n)[::-1].copy()), ("roll", np.roll(np.arange(n), n // 2 + 1))]


def _same_shape_variants(logits, y, envs, num_envs):
    """(property, logits, y, envs) of relabelled environments and permuted examples: the input's shapes.

    All arrays are numpy (see `jaxirm.testing._properties.dev`).
    """
    labels = envs.ndim == 1
    out = []
    for label, perm in env_perms(num_envs):
        relabelled = perm.astype(envs.dtype)[envs] if labels else envs[:, perm]
        out.append((f"relabel environments ({label})", logits, y, relabelled))
    for label, perm in _row_perms(logits.shape[0]):
        out.append((f"permute examples ({label})", logits[perm], y[perm], envs[perm]))
    return out


def _one_hot(labels, num_envs, dtype):
    return np.eye(num_envs, dtype=dtype)[labels]


def _pad_envs(weights, num_pad=2):
    return np.concatenate([weights, np.zeros((weights.shape[0], num_pad), weights.dtype)], axis=1)


def _pad_examples(logits, y, weights):
    """Appends zero-weight rows with arbitrary, valid logits and targets (earlier rows reversed, rescaled)."""
    k = min(logits.shape[0], 3)
    f_pad = np.concatenate([logits, (0.5 - 2.0 * logits[:k][::-1]).astype(logits.dtype)])
    y_pad = np.concatenate([y, y[:k][::-1]])
    w_pad = np.concatenate([weights, np.zeros((k, weights.shape[1]), weights.dtype)])
    return f_pad, y_pad, w_pad


def _padding_variants(logits, y, envs, num_envs):
    """(property, logits, y, envs, num_envs) of the padding properties, one by one (numpy)."""
    if envs.ndim == 1:
        weights = _one_hot(envs, num_envs, logits.dtype)
        out = [
            ("labels equal one-hot weights", logits, y, weights, num_envs),
            ("padding environments", logits, y, envs, num_envs + 2),
        ]
    else:
        weights = envs
        out = [("padding environments", logits, y, _pad_envs(envs), num_envs + 2)]
    return [*out, ("padding examples", *_pad_examples(logits, y, weights), num_envs)]


def _all_padding(logits, y, envs, num_envs):
    """All padding at once: (one-hot) weights with two zero columns and zero rows appended (numpy)."""
    weights = _one_hot(envs, num_envs, logits.dtype) if envs.ndim == 1 else envs
    f_pad, y_pad, w_pad = _pad_examples(logits, y, _pad_envs(weights))
    return f_pad, y_pad, w_pad, num_envs + 2


def _pipeline_any_kind(penalty_fn, loss_fn, num_envs, logits, y, envs, empirical):
    """`_pipeline` with the measure kind as a traced flag, so that both kinds share one compiled program."""
    grads = scale_grads(loss_fn, logits, y, envs, num_envs)
    uniform = env_measure(envs, num_envs, "uniform")
    measure = jnp.where(empirical, env_measure(envs, num_envs, "empirical"), uniform)
    return penalty_fn(grads, measure)


# Module-level jit so that repeated checks with the same functions and shapes reuse one compilation.
_STATIC = (0, 1, 2)
_pipeline_jit = jax.jit(_pipeline_any_kind, static_argnums=_STATIC)
_pipeline_value_and_grad_jit = jax.jit(
    jax.value_and_grad(_pipeline_any_kind, argnums=3), static_argnums=_STATIC
)


def check_env_pipeline(
    penalty_fn: Callable[[jax.Array, jax.Array], jax.Array],
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    logits: ArrayLike,
    y: ArrayLike,
    envs: ArrayLike,
    num_envs: int | None = None,
    *,
    kind: str = "uniform",
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """Checks the whole path p = penalty_fn(scale_grads(loss_fn, f, y, envs), env_measure(envs, kind)).

    The properties, in order (names as in the error message):

    * 'finite scalar': p is a finite scalar.
    * 'jit equals eager': the jitted pipeline gives the same p.
    * 'relabel environments (reversal|roll)': labels mapped through a permutation π (or weight columns
      permuted) give the same p.
    * 'permute examples (reversal|roll)': permuting the rows of logits, y and envs together gives the same p.
    * 'labels equal one-hot weights': for labels, the one-hot weights `jaxirm.envs.one_hot` give the same p.
    * 'padding environments': ``num_envs + 2`` with labels, or two zero weight columns appended, give the same
      p (the padding environments get μ_e = 0 from `jaxirm.env_measure`).
    * 'padding examples': appending rows of zero weight with arbitrary logits and targets (to the weights,
      or to the one-hot weights of labels) gives the same p.
    * 'finite gradient': `jax.grad` of p w.r.t. the logits is finite.

    The three padding properties are first checked together in one compiled program ('padding (environments
    and examples together)'), and one by one only when that fails, to name the one that does.

    Functions are static arguments of a module-level `jax.jit` (the measure kind is not: both kinds share a
    compilation), so reuse the same ``penalty_fn`` and ``loss_fn`` objects across calls (not a fresh lambda
    each time) to compile once per shape.

    Args:
      penalty_fn: penalty ``(grads [E], measure [E]) -> scalar``, e.g. `jaxirm.tv_l1`; must be hashable.
      loss_fn: per-example loss ``(logits, y) -> [n]``, e.g. `jaxirm.losses.bce_with_logits`.
      logits: ``[n]`` or ``[n, C]`` model outputs.
      y: ``[n]`` targets.
      envs: ``[n]`` integer labels (with ``num_envs``) or ``[n, E]`` non-negative weights.
      num_envs: static number of environments; required with labels.
      kind: the `jaxirm.env_measure` kind, ``"uniform"`` or ``"empirical"``.
      rtol: relative tolerance of the comparisons.
      atol: absolute tolerance of the comparisons.

    Raises:
      AssertionError: a property fails; the message names it.
      ValueError, TypeError: invalid inputs, as in `jaxirm.scale_grads` and `jaxirm.env_measure`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxirm
      >>> from jaxirm.losses import bce_with_logits
      >>> from jaxirm.testing import check_env_pipeline
      >>> logits = jnp.array([1.0, -1.0, 2.0, 0.5])
      >>> y = jnp.array([1.0, 0.0, 0.0, 1.0])
      >>> check_env_pipeline(jaxirm.tv_l1, bce_with_logits, logits, y, jnp.array([0, 0, 1, 1]), 2)
    """
    name = "check_env_pipeline"
    if kind not in MEASURE_KINDS:
        raise ValueError(f"kind must be one of {MEASURE_KINDS}, got {kind!r}")
    f = _v.check_logits(loss_fn, logits)
    y = _v.check_targets(loss_fn, f, y)
    envs, num = _v.check_envs(envs, f.shape[0], num_envs)
    try:
        hash((penalty_fn, loss_fn))
    except TypeError as err:
        raise TypeError("penalty_fn and loss_fn must be hashable (they are static arguments of jit)") from err
    empirical = np.asarray(kind == "empirical")

    eager = call(name, "finite scalar", _pipeline, penalty_fn, loss_fn, kind, num, f, y, envs)
    value = scalar(name, "finite scalar", eager)
    f_np, y_np, envs_np = np.asarray(f), np.asarray(y), np.asarray(envs)

    def check(prop, with_grad, f_, y_, envs_, num_):
        fn = _pipeline_value_and_grad_jit if with_grad else _pipeline_jit
        out = call(name, prop, fn, penalty_fn, loss_fn, num_, dev(f_), dev(y_), dev(envs_), empirical)
        out, dlogits = out if with_grad else (out, None)
        assert_close(name, prop, scalar(name, prop, out), value, rtol, atol)
        return dlogits

    # The base input and the variants of the same shapes share one compiled program (with the gradient).
    dlogits = check("jit equals eager", True, f_np, y_np, envs_np, num)
    for prop, f_, y_, envs_ in _same_shape_variants(f_np, y_np, envs_np, num):
        check(prop, True, f_, y_, envs_, num)

    # Fast path: every kind of padding at once (one compilation); one by one only to name a failure.
    try:
        check("padding (environments and examples together)", False, *_all_padding(f_np, y_np, envs_np, num))
    except AssertionError:
        for prop, *args in _padding_variants(f_np, y_np, envs_np, num):
            check(prop, False, *args)
        raise

    prop = "finite gradient"
    df = np.asarray(dlogits)
    if df.shape != f.shape:
        fail(name, prop, f"gradient w.r.t. logits has shape {df.shape}, expected {f.shape}")
    if not np.all(np.isfinite(df)):
        fail(name, prop, "gradient w.r.t. logits is not finite")
