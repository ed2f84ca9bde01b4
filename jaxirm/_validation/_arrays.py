"""Checks of array arguments: logits, targets, environment labels and weights, measures (private).

Every check here runs in Python on static information (shapes, dtypes, Python values) so it fires *before*
tracing, also when the public function is called inside `jax.jit`. Checks on values (label ranges, signs of
weights) run only when the array is concrete, i.e. not a tracer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxirm._validation._scalars import check_int

#: Loss kinds understood by the validators; set as the ``kind`` attribute of the built-in losses.
BINARY = "binary"
REGRESSION = "regression"
MULTICLASS = "multiclass"


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values we can look at (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def concrete_values(x: Any) -> np.ndarray | None:
    """The values of ``x`` as numpy when it is concrete (also a constant closed over under jit), else None.

    Value checks use numpy so that they never stage operations into a trace.
    """
    if not is_concrete(x):
        return None
    return np.asarray(x)


def as_array(name: str, x: Any) -> jax.Array:
    """Converts ``x`` to a JAX array, or raises a `TypeError` naming the argument."""
    if isinstance(x, jax.Array):
        return x
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return jnp.asarray(arr)


def loss_kind(loss_fn: Any) -> str | None:
    """The kind of a built-in loss (``"binary"``, ``"regression"``, ``"multiclass"``), else None."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    return getattr(loss_fn, "kind", None)


def check_logits(loss_fn: Any, logits: Any) -> jax.Array:
    """Checks ``logits`` against the loss kind: ``[n]`` for binary/regression, ``[n, C]`` for multiclass."""
    kind = loss_kind(loss_fn)
    logits = as_array("logits", logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    name = getattr(loss_fn, "__name__", "loss_fn")
    if kind in (BINARY, REGRESSION) and logits.ndim != 1:
        raise ValueError(
            f"logits must have shape [n] for the {kind} loss {name}, got shape {logits.shape}"
            + ("; squeeze a trailing class axis of size 1" if logits.ndim == 2 else "")
        )
    if kind == MULTICLASS and logits.ndim != 2:
        raise ValueError(f"logits must have shape [n, C] for {name}, got shape {logits.shape}")
    if logits.ndim not in (1, 2):
        raise ValueError(f"logits must have shape [n] or [n, C], got shape {logits.shape}")
    if logits.shape[0] == 0:
        raise ValueError("logits must hold at least one example, got n = 0")
    return logits


def check_targets(loss_fn: Any, logits: jax.Array, y: Any) -> jax.Array:
    """Checks ``y`` of shape ``[n]``; integer class labels in ``[0, C)`` for multiclass losses."""
    kind = loss_kind(loss_fn)
    y = as_array("y", y)
    n = logits.shape[0]
    if y.ndim != 1:
        raise ValueError(f"y must have shape [n] = [{n}], got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} examples but logits has {n}; they must match")
    if kind == MULTICLASS:
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise TypeError(f"y must hold integer class labels for {loss_fn.__name__}, got dtype {y.dtype}")
        num_classes = logits.shape[1]
        values = concrete_values(y)
        if values is not None and values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"y must hold class labels in [0, {num_classes}), got range [{values.min()}, {values.max()}]"
            )
    return y


def check_num_envs(num_envs: Any) -> int:
    """A positive Python int, or a `ValueError`/`TypeError` naming ``num_envs``."""
    what = "a static Python int (under jit mark it static (static_argnames) or close over it);"
    return check_int("num_envs", num_envs, 1, what=what)


def check_envs(envs: Any, n: int | None, num_envs: Any) -> tuple[jax.Array, int]:
    """Checks an environment assignment and returns it with its number of environments ``E``.

    Args:
      envs: int labels ``[n]`` or non-negative float weights ``[n, E]``.
      n: the expected number of examples, or None to take it from ``envs``.
      num_envs: required with labels; with weights it must be None or equal ``E``.
    """
    envs = as_array("envs", envs)
    if envs.ndim == 1:
        if not jnp.issubdtype(envs.dtype, jnp.integer):
            raise TypeError(
                f"envs of shape [n] must hold integer environment labels, got dtype {envs.dtype}; "
                "pass soft assignments as float weights of shape [n, E]"
            )
        if num_envs is None:
            raise ValueError(
                "num_envs is required when envs holds integer labels of shape [n] "
                "(a static Python int, so that shapes stay fixed under jit)"
            )
        num = check_num_envs(num_envs)
        values = concrete_values(envs)
        if values is not None and values.size and (values.min() < 0 or values.max() >= num):
            raise ValueError(
                f"envs labels must lie in [0, num_envs) = [0, {num}), got range "
                f"[{values.min()}, {values.max()}]"
            )
    elif envs.ndim == 2:
        if jnp.issubdtype(envs.dtype, jnp.bool_) or jnp.issubdtype(envs.dtype, jnp.integer):
            envs = envs.astype(jnp.result_type(float))
        num = envs.shape[1]
        if num_envs is not None and check_num_envs(num_envs) != num:
            raise ValueError(
                f"num_envs = {num_envs} does not match envs weights of shape {envs.shape} (E = {num})"
            )
        if num < 1:
            raise ValueError(f"envs weights must have at least one column, got shape {envs.shape}")
        values = concrete_values(envs)
        if values is not None and values.size:
            if not np.all(np.isfinite(values)):
                raise ValueError("envs weights must be finite")
            if np.any(values < 0):
                raise ValueError("envs weights must be non-negative")
    else:
        raise ValueError(
            f"envs must be integer labels of shape [n] or weights of shape [n, E], got shape {envs.shape}"
        )
    if n is not None and envs.shape[0] != n:
        raise ValueError(f"envs has {envs.shape[0]} examples but logits has {n}; they must match")
    return envs, num


def check_measure(measure: Any, num_envs: int, name: str = "measure") -> jax.Array | None:
    """None, or a floating vector of length ``num_envs``."""
    if measure is None:
        return None
    measure = as_array(name, measure)
    if measure.ndim != 1:
        raise ValueError(f"{name} must have shape [E] = [{num_envs}], got shape {measure.shape}")
    if measure.shape[0] != num_envs:
        raise ValueError(f"{name} has length {measure.shape[0]} but there are {num_envs} environments")
    values = concrete_values(measure)
    if values is not None and np.any(values < 0):
        raise ValueError(f"{name} must be non-negative (a probability vector)")
    return measure.astype(jnp.result_type(float))


def check_vector(name: str, x: Any, what: str = "[E]") -> jax.Array:
    """A 1-D floating array (environment gradients or risks)."""
    x = as_array(name, x)
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape {what}, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_split(name: str, x: Any) -> jax.Array:
    """Split-batch gradients: a floating ``[2, E]`` array."""
    x = as_array(name, x)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(
            f"{name} must have shape [2, E] (halves a and b, e.g. from split_scale_grads), "
            f"got shape {x.shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x
