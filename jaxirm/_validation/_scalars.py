"""Checks of scalar arguments: ints, seeds, PRNG keys, numbers in a range, probabilities, choices, paths,
and the solvers' hyperparameters (private).

Every check takes the argument's name first and raises a `TypeError` (wrong type) or `ValueError` (wrong
value) whose message names it, before anything is traced.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

_NUMBER = (int, float, np.integer, np.floating)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, _NUMBER)


def check_int(name: str, value: Any, minimum: int | None = None, *, what: str = "an int") -> int:
    """A Python or numpy integer (not a bool) ``>= minimum``, else a `TypeError`/`ValueError` naming it.

    ``what`` words the expected type in the `TypeError` (e.g. "a static Python int").
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


#: Seeds of `jax.random.key` in a sweep travel as uint32: they must lie in [0, 2**32).
UINT32_SEEDS = 2**32


def check_seed(seed: Any, name: str = "seed", *, upper: int | None = None) -> int:
    """A non-negative integer seed (below ``upper`` when given), else a `TypeError`/`ValueError` naming it.

    numpy's generators take any non-negative int; the seeds of a `jaxirm.sweep` travel as uint32, so it
    passes ``upper=2**32``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int, got {type(seed).__name__} {seed!r}")
    if seed < 0 or (upper is not None and seed >= upper):
        bound = "" if upper is None else f" and < 2**{upper.bit_length() - 1}"
        raise ValueError(f"{name} must be >= 0{bound}, got {seed}")
    return int(seed)


def check_key(key: Any, name: str = "key") -> jax.Array:
    """A JAX PRNG key: a typed key from `jax.random.key` (shape ``()``) or a raw uint32 key from
    `jax.random.PRNGKey`; else a `TypeError` naming the argument (before JAX's internal message)."""
    if isinstance(key, (jax.Array, np.ndarray)):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == np.uint32 and key.ndim == 1:
            return key
        what = f"an array of dtype {key.dtype} and shape {key.shape}"
    else:
        what = f"{type(key).__name__} {key!r}"
    raise TypeError(f"{name} must be one PRNG key, e.g. jax.random.key(0), got {what}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    what: str = "a number",
) -> float:
    """A finite real number (not a bool) in ``[low, high]`` (``(low, …`` / ``…, high)`` when open).

    Raises:
      TypeError: not a number (``what`` says what was expected).
      ValueError: not finite, or outside the range.
    """
    if not _is_number(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and (value >= high if open_high else value > high)
    if below or above:
        if high is None:
            rule = f"be {'>' if open_low else '>='} {low:g}"
        elif low is None:
            rule = f"be {'<' if open_high else '<='} {high:g}"
        else:
            rule = f"lie in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must {rule}, got {value:g}")
    return value


def check_prob(name: str, value: Any) -> float:
    """A probability: a number in [0, 1]."""
    return check_number(name, value, low=0.0, high=1.0, what="a probability (a float in [0, 1])")


def check_fraction(name: str, value: Any) -> float:
    """A fraction strictly inside (0, 1)."""
    return check_number(
        name, value, low=0.0, high=1.0, open_low=True, open_high=True, what="a float in (0, 1)"
    )


def check_numbers(name: str, values: Any, check=check_prob, what: str = "probabilities") -> tuple[float, ...]:
    """A non-empty sequence of numbers, each passed through ``check(f"{name}[i]", value)``.

    Raises:
      TypeError: not a sequence (a string is not one), or an element of the wrong type.
      ValueError: an empty sequence, or an element out of range.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of {what}, one per environment, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must list at least one environment's value")
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices``, else a `ValueError` (or `TypeError` for a non-string) naming the argument."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_path(name: str, path: Any) -> Path:
    """A `str` or `os.PathLike` as a `Path`, else a `TypeError` naming the argument."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    return Path(path)


HPARAM_RULES = {"lam": ">= 0", "l2": ">= 0", "anneal_steps": ">= 0", "lr": "> 0", "tv_norm": "1 or 2"}
"""The ranges of the hyperparameters every game shares (``tv_norm``: the games whose TV norm is data)."""


def out_of_range(name: str, value: Any) -> bool:
    """Whether a concrete value (a number or an array of them) breaks ``name``'s rule in `HPARAM_RULES`
    (a name without a rule never does)."""
    arr, rule = np.asarray(value, dtype=np.float64), HPARAM_RULES.get(name)
    return bool(
        (rule == ">= 0" and np.any(arr < 0))
        or (rule == "> 0" and np.any(arr <= 0))
        or (rule == "1 or 2" and not np.all((arr == 1) | (arr == 2)))
    )


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
        ``lr`` > 0, ``tv_norm`` 1 or 2) or not finite; with ``scalar``, a value that is not a scalar.
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
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"hparams[{name!r}] must be finite, got {value!r}")
            if out_of_range(name, arr):
                raise ValueError(f"hparams[{name!r}] must be {HPARAM_RULES[name]}, got {value!r}")
        merged[name] = value
    return merged
