"""What a solver accepts as a model and as an optimizer (private).

A model is turned into a pair of pure functions ``init_fn(key, x) -> params`` and
``apply_fn(params, x) -> logits``:

* a flax.linen Module: ``model.init(key, x[:1])`` and ``model.apply``;
* a flax.nnx Module instance: split once into a graph, its `nnx.Param` state (the parameters the solver
  trains) and the rest (batch statistics, RNG streams); ``apply_fn`` merges them back and calls the module.
  Every run starts from the instance's weights (the key is not used: an nnx instance is already initialised);
* a flax.nnx Module class, or a `functools.partial` of one that leaves out ``rngs``: built per run as
  ``model(rngs=nnx.Rngs(key))``, so the seeds of a sweep start from different weights;
* a pair ``(init_fn, apply_fn)``, used as it is.

The nnx forms are pure: the rest of the state is passed to every call unchanged, so layers that update state
when called (BatchNorm's running statistics in training mode, Dropout's RNG stream) see the same values at
every step. Put such modules in evaluation mode (``module.eval()``) or use the pair form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxirm import _validation as _v
from jaxirm._types import PyTree

ModelLike = Any  # a flax.linen or flax.nnx Module, an nnx Module class, or (init_fn, apply_fn)


class OptimizerLike(Protocol):
    """An optimizer as solvers use it: optax's ``init`` and ``update`` (any transformation, MultiSteps)."""

    def init(self, params: Any) -> Any: ...

    def update(self, updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]: ...


_MODEL_TYPES = (
    "a flax.linen Module, a flax.nnx Module (an instance, or its class / a functools.partial of it that "
    "takes rngs=), or a pair (init_fn(key, x) -> params, apply_fn(params, x) -> logits)"
)


def _is_nnx_factory(model: Any) -> bool:
    func = model.func if isinstance(model, functools.partial) else model
    return isinstance(func, type) and issubclass(func, nnx.Module)


def _nnx_fns(module: nnx.Module, *, per_key: Callable[[jax.Array], nnx.Module] | None):
    graphdef, _, rest = nnx.split(module, nnx.Param, ...)
    if per_key is None:
        _, params0, _ = nnx.split(module, nnx.Param, ...)
        # A fresh copy, so that the solver never shares Variable objects with the user's module.
        params0 = jax.tree_util.tree_map(lambda a: a, params0)

        def init_fn(key, x):
            del key, x  # an nnx instance is already initialised
            return params0

    else:

        def init_fn(key, x):
            del x
            return nnx.split(per_key(key), nnx.Param, ...)[1]

    def apply_fn(params, x):
        # tree_map rebuilds the Variables of the rest at the current trace level (merging the originals inside
        # a jit would let a stateful layer write to an outer trace); their updates are dropped: apply is pure.
        return nnx.merge(graphdef, params, jax.tree_util.tree_map(lambda a: a, rest))(x)

    return init_fn, apply_fn


def model_fns(model: ModelLike) -> tuple[Callable, Callable]:
    """``(init_fn(key, x) -> params, apply_fn(params, x) -> logits)`` for any supported model.

    Raises:
      TypeError: ``model`` is none of the supported forms.
    """
    if isinstance(model, nn.Module):
        return (lambda key, x: model.init(key, x[:1])), model.apply
    if isinstance(model, nnx.Module):
        return _nnx_fns(model, per_key=None)
    if _is_nnx_factory(model):
        try:
            template = model(rngs=nnx.Rngs(0))
        except TypeError as err:
            raise TypeError(
                "model must be buildable as model(rngs=nnx.Rngs(key)) when it is an nnx Module class "
                f"or a functools.partial of one: {err}"
            ) from err
        return _nnx_fns(template, per_key=lambda key: model(rngs=nnx.Rngs(key)))
    if isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model):
        return model
    raise TypeError(f"model must be {_MODEL_TYPES}, got {type(model).__name__}")


def features_first_fn(model: ModelLike) -> Callable | None:
    """``apply_ft(params, xt) -> logits`` taking the inputs features-first (``[d, n]``), for the models that
    support it (`jaxirm.models.MLP` and `jaxirm.models.LinearFeatures` themselves, not subclasses, which may
    override ``__call__``); None for any other model."""
    from jaxirm.models import MLP, LinearFeatures

    if type(model) in (MLP, LinearFeatures):
        return lambda params, xt: model.apply(params, xt, features_first=True)
    return None


def check_optimizer(name: str, optimizer: Any) -> Any:
    """Accepts any optax-like optimizer: an object with callable ``init`` and ``update``.

    `optax.GradientTransformation`, `optax.GradientTransformationExtraArgs` and wrappers such as
    `optax.MultiSteps` (a class with ``init``/``update`` methods, not a GradientTransformation) all qualify.

    Raises:
      TypeError: ``optimizer`` lacks a callable ``init`` or ``update``.
    """
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(
            f"{name} must be an optax optimizer (an object with init(params) and "
            f"update(grads, state, params), e.g. optax.adam(1e-3) or optax.MultiSteps(...)), "
            f"got {type(optimizer).__name__}"
        )
    return optimizer


def default_optimizer(optimizer: OptimizerLike | None, lr: float) -> OptimizerLike:
    """``optimizer`` (any optax-like object, `optax.MultiSteps` included), else Adam with a sweepable
    ``lr``."""
    if optimizer is None:
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    return check_optimizer("optimizer", optimizer)


def injected_learning_rate(opt_state: PyTree) -> jax.Array | None:
    """The ``learning_rate`` of an `optax.inject_hyperparams` state inside ``opt_state``, else None."""
    found = optax.tree_utils.tree_get_all_with_path(opt_state, "learning_rate")
    return found[0][1] if found else None


def set_learning_rate(opt_state: PyTree, value: jax.Array) -> PyTree:
    """Replaces ``learning_rate`` inside an `optax.inject_hyperparams` state (searching nested chains).

    Raises:
      ValueError: no such hyperparameter exists in the state.
    """
    lr = injected_learning_rate(opt_state)
    if lr is None:
        raise ValueError(
            "lr can only be set when the optimizer is built with optax.inject_hyperparams, "
            "e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)"
        )
    return optax.tree_utils.tree_set(opt_state, learning_rate=jnp.asarray(value, jnp.asarray(lr).dtype))


def injected_lr(optimizer: OptimizerLike) -> float | None:
    """The learning rate of an optimizer built with `optax.inject_hyperparams`, else None.

    The value lives only in the optimizer's state, so the optimizer is initialised on a scalar; one that
    cannot be (e.g. a `optax.multi_transform` over named parameters) has no sweepable learning rate.
    """
    try:
        state = optimizer.init(jnp.zeros(()))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return None
    lr = injected_learning_rate(state)
    return None if lr is None else float(np.asarray(lr))


def default_hparams(
    optimizer: OptimizerLike | None, *, lr: float, l2: float, lam: float | None = None, anneal_steps=None
) -> dict[str, float]:
    """The checked default hyperparameters of a solver: ``l2`` (and ``lam``, ``anneal_steps`` when given),
    and ``lr`` with the default optimizer or an optimizer built with `optax.inject_hyperparams`."""
    d = {"l2": _v.check_number("l2", l2, low=0.0)}
    for name, value in (("lam", lam), ("anneal_steps", anneal_steps)):
        if value is not None:  # lam = inf would make the warm-up's 0·lam a NaN: check_number refuses it
            d[name] = _v.check_number(name, value, low=0.0)
    if optimizer is None:
        d["lr"] = _v.check_number("lr", lr, low=0.0, open_low=True)
    elif (found := injected_lr(optimizer)) is not None:  # its learning rate can be swept as "lr"
        d["lr"] = found
    return d


def check_inferred_envs(num_envs: Any) -> int:
    """The number of inferred environments: an int >= 2."""
    if _v.check_num_envs(num_envs) < 2:
        raise ValueError(f"num_envs must be >= 2 to infer environments, got {num_envs}")
    return int(num_envs)
