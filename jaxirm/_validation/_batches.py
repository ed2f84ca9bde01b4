"""Checks of the batches and run arguments of `jaxirm.fit`, `jaxirm.sweep` and `jaxirm.run` (private).

A solver declares what its batches need (`Solver` fields ``needs_z``, ``uses_envs``, ``num_envs``,
``loss_kind``, ``full_batch``, ``min_steps``); `check_inputs` checks everything a run is given in one call,
on concrete data, before anything is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxirm._types import Batch, Solver
from jaxirm._validation._arrays import BINARY, MULTICLASS, REGRESSION, check_envs
from jaxirm._validation._scalars import check_hparams, check_int


def check_finite(name: str, x) -> np.ndarray:
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} holds {bad} NaN or infinite value(s)")
    return arr


def check_solver(solver) -> None:
    if not isinstance(solver, Solver):
        raise TypeError(
            "solver must be a jaxirm Solver built by a factory of jaxirm.solvers around the model (e.g. "
            f"jaxirm.solvers.irm(model) or erm(model)), got {type(solver).__name__}"
        )


def check_features(name: str, x: jax.Array, train_x: jax.Array, lead: int = 1) -> None:
    """``name.x`` must have the training batch's per-example shape (the model was built for it)."""
    got, want = tuple(x.shape[lead:]), tuple(train_x.shape[lead:])
    if got != want:
        size = lambda s: str(s[0]) if len(s) == 1 else str(s)  # noqa: E731
        raise ValueError(
            f"{name}.x must have {size(want)} features per example like batch.x (the model's input), "
            f"got {size(got)} (shape {tuple(x.shape)})"
        )


def check_classes(
    solver: Solver, batch: Batch, batches: Mapping[str, Batch | None], stacked: bool = False
) -> None:
    """Class labels of a multiclass loss must lie below the model's number of outputs C.

    C comes from `jax.eval_shape` of ``init`` and ``predict`` on the training batch's shapes (``stacked``:
    one dataset per seed on a leading axis), so nothing runs or compiles.
    """
    if solver.loss_kind != MULTICLASS:
        return
    lead = 1 if stacked else 0
    probe = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[lead:], a.dtype), batch)
    out = jax.eval_shape(lambda b: solver.predict(solver.init(jax.random.key(0), b), b.x), probe)
    if len(out.shape) < 2:
        return  # the loss itself reports logits without a class axis
    num_classes = out.shape[-1]
    for name, b in batches.items():
        y = None if b is None else np.asarray(b.y)
        if y is not None and y.size and y.max() >= num_classes:
            raise ValueError(
                f"{name}.y must hold class labels in [0, {num_classes}) (the model has {num_classes} "
                f"outputs), got a label {y.max()}"
            )


def check_batch(solver: Solver, batch: Batch, name: str, *, test: bool = False) -> tuple[Batch, int | None]:
    """Checks a batch's arrays and returns it as jax arrays with its number of (test) environments."""
    if not isinstance(batch, Batch):
        raise TypeError(f"{name} must be a jaxirm.solvers.Batch, got {type(batch).__name__}")
    x = check_finite(f"{name}.x", batch.x)
    y = check_finite(f"{name}.y", batch.y)
    n = x.shape[0] if x.ndim else 0
    if x.ndim < 2 or n == 0:
        raise ValueError(f"{name}.x must have shape [n, ...] with n >= 1, got shape {x.shape}")
    if y.shape != (n,):
        raise ValueError(f"{name}.y must have shape [n] = [{n}], got shape {y.shape}")
    kind = solver.loss_kind
    if kind == BINARY and np.any((y < 0) | (y > 1)):
        raise ValueError(f"{name}.y must hold binary labels in [0, 1] for {solver.name}")
    if kind == MULTICLASS:
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name}.y must hold integer class labels, got dtype {y.dtype}")
        if np.any(y < 0):
            raise ValueError(f"{name}.y must hold class labels >= 0")
    z = batch.z
    if solver.needs_z and not test:
        if z is None:
            raise ValueError(f"{name}.z is required: {solver.name} infers environments from z")
    if z is not None:
        z = check_finite(f"{name}.z", z)
        if z.ndim != 2 or z.shape[0] != n:
            raise ValueError(f"{name}.z must have shape [n, k] = [{n}, k], got shape {z.shape}")
    envs = batch.envs
    num = None
    if test:
        if envs is None:
            raise ValueError(f"{name}.envs is required: test metrics are reported per environment")
        envs = np.asarray(envs)
        if envs.shape != (n,) or not np.issubdtype(envs.dtype, np.integer):
            raise ValueError(f"{name}.envs must be integer environment labels of shape [n] = [{n}]")
        if np.any(envs < 0):
            raise ValueError(f"{name}.envs labels must be >= 0")
        num = int(envs.max()) + 1
    elif envs is not None:
        envs = check_finite(f"{name}.envs", envs)
        if solver.uses_envs:
            check_envs(envs, n, solver.num_envs if envs.ndim == 1 else None)
    elif solver.uses_envs:
        raise ValueError(f"{name}.envs is required: {solver.name} penalises known environments")
    out = Batch(
        x=jnp.asarray(x),
        y=jnp.asarray(y),
        envs=None if envs is None else jnp.asarray(envs),
        z=None if z is None else jnp.asarray(z),
    )
    return out, num


def check_min_steps(solver: Solver, num_steps: int) -> None:
    """Refuses a run too short to train Φ (EIIL's first phases train only the reference and assignments)."""
    need = int(getattr(solver, "min_steps", 1))
    if num_steps < need:
        raise ValueError(
            f"num_steps must be >= {need} for {solver.name}: its first {need - 1} steps train the reference "
            f"model and the environment assignments, not the model itself; got num_steps={num_steps}"
        )


def check_batch_size(solver: Solver, batch_size, n: int) -> int | None:
    """None (full batch), or an int in [2, n] for a solver that can take minibatches."""
    if batch_size is None:
        return None
    if solver.full_batch:
        raise ValueError(f"batch_size must be None: {solver.name} keeps per-example state (full batch only)")
    batch_size = check_int("batch_size", batch_size, minimum=2)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n}, got {batch_size}")
    return batch_size


def check_metric(solver: Solver, metric: str | None) -> str:
    """``metric``, or the solver's default (``"mse"`` for a regression loss, else ``"accuracy"``)."""
    if metric is None:
        return "mse" if solver.loss_kind == REGRESSION else "accuracy"
    if metric not in ("accuracy", "mse"):
        raise ValueError(f"metric must be 'accuracy' or 'mse', got {metric!r}")
    return metric


def check_stacked(solver, batch, name, stacked: bool, num_seeds: int, test: bool = False):
    """`_check_batch` on every per-seed slice of a stacked batch (or on the batch itself)."""
    if not stacked:
        return check_batch(solver, batch, name, test=test)
    if not isinstance(batch, Batch):
        raise TypeError(f"{name} must be a jaxirm.solvers.Batch, got {type(batch).__name__}")
    parts = [None if a is None else np.asarray(a) for a in batch]
    for field, arr in zip(Batch._fields, parts, strict=True):
        if arr is not None and (arr.ndim < 1 or arr.shape[0] != num_seeds):
            raise ValueError(
                f"{name}.{field} must have a leading axis of one dataset per seed ({num_seeds}) with "
                f"data_per_seed=True, got shape {arr.shape}"
            )
    nums = []
    slices = []
    for i in range(num_seeds):
        one = Batch(*[None if a is None else a[i] for a in parts])
        one, num = check_batch(solver, one, f"{name}[{i}]", test=test)
        slices.append(one)
        nums.append(num)
    stacked_batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *slices)
    return stacked_batch, (max(nums) if test else None)


class Inputs(NamedTuple):
    """What `check_inputs` returns: the batches as jax arrays and the checked run arguments.

    Attributes:
      batch: the training `Batch`.
      test: the test `Batch`, or None.
      val: the validation `Batch`, or None.
      num_test: the number of test environments (largest label + 1), or None.
      num_val: the number of validation environments, or None.
      batch_size: None (full batch) or the minibatch size.
      metric: ``"accuracy"`` or ``"mse"``.
    """

    batch: Batch
    test: Batch | None
    val: Batch | None
    num_test: int | None
    num_val: int | None
    batch_size: int | None
    metric: str


def check_inputs(
    solver: Solver,
    batch: Batch,
    *,
    test: Batch | None = None,
    val: Batch | None = None,
    batch_size: int | None = None,
    metric: str | None = None,
    hparams: Mapping | None = None,
    stacked: bool = False,
    num_seeds: int = 1,
) -> Inputs:
    """Checks a run's batches against the solver's declared needs, and its batch size, metric and hparams.

    Args:
      solver: the `Solver`.
      batch, test, val: the training, test and validation batches (``test``/``val`` need integer
        ``envs``); with ``stacked``, one dataset per seed on a leading axis of ``num_seeds``.
      batch_size: None or a minibatch size in [2, n] (not for a full-batch solver).
      metric: ``"accuracy"``, ``"mse"`` or None (from the solver's loss).
      hparams: scalar hyperparameters overriding ``solver.defaults``, or None.
      stacked: the batches carry a leading per-seed axis.
      num_seeds: the length of that axis.

    Raises:
      ValueError, TypeError: naming the argument and the expected shape, type or range.
    """
    check_solver(solver)
    batch, _ = check_stacked(solver, batch, "batch", stacked, num_seeds)
    lead = 1 if stacked else 0
    size = check_batch_size(solver, batch_size, batch.x.shape[lead])
    checked = {}
    for name, other in (("test", test), ("val", val)):
        checked[name] = (
            (None, None)
            if other is None
            else check_stacked(solver, other, name, stacked, num_seeds, test=True)
        )
        if other is not None:
            check_features(name, checked[name][0].x, batch.x, lead + 1)
    if hparams is not None:
        check_hparams(solver.name, solver.defaults, hparams, scalar=True)
    (test, num_test), (val, num_val) = checked["test"], checked["val"]
    check_classes(solver, batch, {"batch": batch, "test": test, "val": val}, stacked=stacked)
    return Inputs(batch, test, val, num_test, num_val, size, check_metric(solver, metric))
