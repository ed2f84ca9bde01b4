"""Training loops: `fit` (one run, `lax.scan` in chunks, evaluation and model selection) and `sweep` (seeds ×
hyperparameter grids vmapped in one compile, the sweep axis sharded over every device).

Model selection is explicit and reported by name (never mixed):

* ``"final"``: the model after the last step.
* ``"train-val"``: the evaluated step with the best metric on held-out data of the *training* environments
  (``val``), and the test metrics at that step.
* ``"oracle"``: the best test mean and, separately, the best test worst over the evaluated steps — test-set
  selection, what the released code records as its best results.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxirm import _validation as _v
from jaxirm.envs import _env_means, _env_sums
from jaxirm.selection import STEP_SELECTIONS as _STEP_SELECTIONS
from jaxirm.solvers._base import Batch, Solver, SolverState, check_hparams, tree_where

__all__ = ["FitResult", "SweepResult", "evaluate", "fit", "sweep", "SELECTIONS"]

SELECTIONS = _STEP_SELECTIONS
"""The model-selection rules `fit` and `sweep` report (names and descriptions: `jaxirm.selection`)."""


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the final `SolverState` (frozen at its last finite value if the run diverged).
      history: dict of numpy arrays over the T evaluations: ``step`` ``[T]``; the training metrics of the
        step before each evaluation (``loss``, ``risk``, ``penalty``, ``lam``, ``diverged``) ``[T]``; with a
        test batch ``test_env`` ``[T, E_test]`` (E_test = largest test label + 1), ``test_mean`` (the metric
        over all test examples pooled, the papers' "mean": the mean over environments when they have equal
        sizes) and ``test_worst`` (the worst environment's) ``[T]``; with a validation batch ``val``
        ``[T]`` (mean over its environments). Worst and ``val`` are taken over the environments that hold
        examples: a label without examples (a gap in the labels, or an environment one seed's data lack in
        a ``data_per_seed`` sweep) is left out, not scored as accuracy 0; ``test_env`` shows 0 for it.
      selection: ``{"final"|"train-val"|"oracle": {"step", "test_mean", "test_worst"}}`` (floats; only the
        selections the given batches allow); ``train-val`` also keeps ``val``, the score it selected by.
      metric: ``"accuracy"`` (higher is better) or ``"mse"`` (lower is better).
    """

    state: SolverState
    history: dict
    selection: dict
    metric: str


class SweepResult(NamedTuple):
    """What `sweep` returns: every leaf has a leading run axis R = seeds × grid points.

    Attributes:
      configs: list of R dicts ``{"seed": int, <hparam>: float, ...}``, in run order.
      state: the final states, stacked (numpy).
      history: as in `FitResult`, every array with a leading ``[R]`` axis.
      selection: ``{selection: {"step"|"test_mean"|"test_worst": [R]}}``.
      diverged: ``[R]`` bool, runs frozen at a non-finite loss, parameters or optimizer state.
      metric: ``"accuracy"`` or ``"mse"``.
      selected_states: with ``sweep(..., keep_selected=True)``, ``{"train-val"|"oracle": stacked states}``:
        each run's state at the step that selection picks (``oracle``: the best test mean); else None.
    """

    configs: list
    state: Any
    history: dict
    selection: dict
    diverged: np.ndarray
    metric: str
    selected_states: dict | None = None


# ----------------------------------------------------------------------------------------------------------
# Validation of concrete data, before anything is compiled.


def _finite(name: str, x) -> np.ndarray:
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} holds {bad} NaN or infinite value(s)")
    return arr


def _check_solver(solver) -> None:
    if not isinstance(solver, Solver):
        raise TypeError(
            "solver must be a jaxirm Solver built by a factory of jaxirm.solvers around the model (e.g. "
            f"jaxirm.solvers.irm(model) or erm(model)), got {type(solver).__name__}"
        )


def _check_features(name: str, x: jax.Array, train_x: jax.Array, lead: int = 1) -> None:
    """``name.x`` must have the training batch's per-example shape (the model was built for it)."""
    got, want = tuple(x.shape[lead:]), tuple(train_x.shape[lead:])
    if got != want:
        size = lambda s: str(s[0]) if len(s) == 1 else str(s)  # noqa: E731
        raise ValueError(
            f"{name}.x must have {size(want)} features per example like batch.x (the model's input), "
            f"got {size(got)} (shape {tuple(x.shape)})"
        )


def _check_classes(
    solver: Solver, batch: Batch, batches: Mapping[str, Batch | None], stacked: bool = False
) -> None:
    """Class labels of a multiclass loss must lie below the model's number of outputs C.

    C comes from `jax.eval_shape` of ``init`` and ``predict`` on the training batch's shapes (``stacked``:
    one dataset per seed on a leading axis), so nothing runs or compiles.
    """
    if solver.loss_kind != _v.MULTICLASS:
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


def _check_batch(solver: Solver, batch: Batch, name: str, *, test: bool = False) -> tuple[Batch, int | None]:
    """Checks a batch's arrays and returns it as jax arrays with its number of (test) environments."""
    if not isinstance(batch, Batch):
        raise TypeError(f"{name} must be a jaxirm.solvers.Batch, got {type(batch).__name__}")
    x = _finite(f"{name}.x", batch.x)
    y = _finite(f"{name}.y", batch.y)
    n = x.shape[0] if x.ndim else 0
    if x.ndim < 2 or n == 0:
        raise ValueError(f"{name}.x must have shape [n, ...] with n >= 1, got shape {x.shape}")
    if y.shape != (n,):
        raise ValueError(f"{name}.y must have shape [n] = [{n}], got shape {y.shape}")
    kind = solver.loss_kind
    if kind == _v.BINARY and np.any((y < 0) | (y > 1)):
        raise ValueError(f"{name}.y must hold binary labels in [0, 1] for {solver.name}")
    if kind == _v.MULTICLASS:
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name}.y must hold integer class labels, got dtype {y.dtype}")
        if np.any(y < 0):
            raise ValueError(f"{name}.y must hold class labels >= 0")
    z = batch.z
    if solver.needs_z and not test:
        if z is None:
            raise ValueError(f"{name}.z is required: {solver.name} infers environments from z")
    if z is not None:
        z = _finite(f"{name}.z", z)
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
        envs = _finite(f"{name}.envs", envs)
        if solver.uses_envs:
            _v.check_envs(envs, n, solver.num_envs if envs.ndim == 1 else None)
    elif solver.uses_envs:
        raise ValueError(f"{name}.envs is required: {solver.name} penalises known environments")
    out = Batch(
        x=jnp.asarray(x),
        y=jnp.asarray(y),
        envs=None if envs is None else jnp.asarray(envs),
        z=None if z is None else jnp.asarray(z),
    )
    return out, num


def _check_int(name: str, value, minimum: int = 1) -> int:
    return _v.check_int(name, value, minimum)


def _check_min_steps(solver: Solver, num_steps: int) -> None:
    """Refuses a run too short to train Φ (EIIL's first phases train only the reference and assignments)."""
    need = int(getattr(solver, "min_steps", 1))
    if num_steps < need:
        raise ValueError(
            f"num_steps must be >= {need} for {solver.name}: its first {need - 1} steps train the reference "
            f"model and the environment assignments, not the model itself; got num_steps={num_steps}"
        )


def _check_batch_size(solver: Solver, batch_size, n: int) -> int | None:
    """None (full batch), or an int in [2, n] for a solver that can take minibatches."""
    if batch_size is None:
        return None
    if solver.full_batch:
        raise ValueError(f"batch_size must be None: {solver.name} keeps per-example state (full batch only)")
    batch_size = _check_int("batch_size", batch_size, minimum=2)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n}, got {batch_size}")
    return batch_size


def _metric_name(solver: Solver, metric: str | None) -> str:
    if metric is None:
        return "mse" if solver.loss_kind == _v.REGRESSION else "accuracy"
    if metric not in ("accuracy", "mse"):
        raise ValueError(f"metric must be 'accuracy' or 'mse', got {metric!r}")
    return metric


# ----------------------------------------------------------------------------------------------------------
# Pure pieces shared by fit and sweep.


def _per_example_metric(logits: jax.Array, y: jax.Array, metric: str) -> jax.Array:
    if metric == "mse":
        return (logits - y.astype(logits.dtype)) ** 2
    if logits.ndim == 2:
        return (jnp.argmax(logits, axis=1) == y).astype(jnp.float32)
    return ((logits > 0) == (y > 0.5)).astype(jnp.float32)


def evaluate(
    solver: Solver, state: SolverState, batch: Batch, num_envs: int, metric: str = "accuracy"
) -> jax.Array:
    """Per-environment metric of the solver's model on a labelled batch.

    Args:
      solver: the `Solver` whose ``predict`` gives the logits.
      state: its state.
      batch: a `Batch` whose ``envs`` are integer labels ``[n]`` in ``[0, num_envs)``.
      num_envs: static number of environments.
      metric: ``"accuracy"`` or ``"mse"``.

    Returns:
      ``[num_envs]`` metric per environment (0 for an environment without examples).
    """
    values = _per_example_metric(solver.predict(state, batch.x), batch.y, metric)
    return _env_means(values, batch.envs, num_envs)


def _summaries(per_env: jax.Array, counts: jax.Array, metric: str) -> tuple[jax.Array, jax.Array]:
    """The papers' summaries: the metric over all test examples pooled (their "mean accuracy", which is the
    mean over environments when these have equal sizes) and the worst environment's, over the environments
    that hold examples (an empty one, e.g. a gap in the labels, is not scored as accuracy 0 or MSE 0)."""
    present = counts > 0
    if metric == "mse":
        worst = jnp.max(jnp.where(present, per_env, -jnp.inf), axis=-1)
    else:
        worst = jnp.min(jnp.where(present, per_env, jnp.inf), axis=-1)
    pooled = jnp.sum(per_env * counts, axis=-1) / jnp.maximum(jnp.sum(counts, axis=-1), 1.0)
    return pooled, worst


def _minibatch(batch: Batch, key: jax.Array, size: int) -> Batch:
    idx = jax.random.choice(key, batch.x.shape[0], (size,), replace=False)
    take = lambda a: None if a is None else a[idx]  # noqa: E731
    return Batch(take(batch.x), take(batch.y), take(batch.envs), take(batch.z))


def _make_chunk(
    solver: Solver, batch_size: int | None, metric: str, num_test: int | None, num_val: int | None
):
    """A pure function: ``length`` steps of training, then one evaluation."""

    def chunk(carry, batch, test, val, length):
        def body(c, _):
            state, key = c
            key, sub = jax.random.split(key)
            b = batch if batch_size is None else _minibatch(batch, sub, batch_size)
            state, metrics = solver.step(state, b)
            return (state, key), metrics

        (state, key), metrics = jax.lax.scan(body, carry, None, length=length)
        record = {k: v[-1] for k, v in metrics.items()}
        record["step"] = state.step
        if test is not None:
            per_env = evaluate(solver, state, test, num_test, metric)
            record["test_env"] = per_env
            counts = _env_sums(jnp.ones(test.envs.shape, per_env.dtype), test.envs, num_test)
            record["test_mean"], record["test_worst"] = _summaries(per_env, counts, metric)
        if val is not None:
            # The mean over the validation environments that hold examples.
            present = _env_sums(jnp.ones(val.envs.shape, jnp.float32), val.envs, num_val) > 0
            per_val = evaluate(solver, state, val, num_val, metric)
            record["val"] = jnp.sum(jnp.where(present, per_val, 0.0)) / jnp.sum(present)
        return (state, key), record

    return chunk


def _lengths(num_steps: int, eval_every: int) -> list[int]:
    full, rest = divmod(num_steps, eval_every)
    return [eval_every] * full + ([rest] if rest else [])


def _select(history: Mapping[str, Any], metric: str, xp=np) -> dict:
    """Model selection from a history (numpy or jax arrays; a leading run axis is allowed)."""
    if "test_mean" not in history:
        return {}
    better = xp.argmin if metric == "mse" else xp.argmax
    steps, mean, worst = history["step"], history["test_mean"], history["test_worst"]

    def at(values, idx):
        return xp.take_along_axis(values, idx[..., None], axis=-1)[..., 0]

    last = xp.full(mean.shape[:-1], mean.shape[-1] - 1, dtype=np.int32)
    out = {"final": {"step": at(steps, last), "test_mean": at(mean, last), "test_worst": at(worst, last)}}
    if "val" in history:
        best = better(history["val"], axis=-1)
        out["train-val"] = {
            "step": at(steps, best),
            "test_mean": at(mean, best),
            "test_worst": at(worst, best),
            "val": at(history["val"], best),  # the validation score it was selected by
        }
    i_mean, i_worst = better(mean, axis=-1), better(worst, axis=-1)
    out["oracle"] = {
        "step": at(steps, i_mean),
        "test_mean": at(mean, i_mean),
        "test_worst": at(worst, i_worst),
    }
    return out


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and not os.environ.get("CI")


# Compiled programs are cached per solver and static configuration, so a second `fit` or `sweep` with the
# same solver and shapes reuses the compilation (jax.jit caches per function object, and the closures below
# are new objects on every call otherwise). Keys hold the solver's functions, which keeps them alive; the
# cache is small (one entry per solver × configuration used in the process).
_CACHE: dict = {}


def _solver_key(solver: Solver) -> tuple:
    return (solver.init, solver.step, solver.predict)


def _jitted_chunk(solver: Solver, batch_size, metric, num_test, num_val):
    key = ("chunk", _solver_key(solver), batch_size, metric, num_test, num_val)
    if key not in _CACHE:
        _CACHE[key] = jax.jit(
            _make_chunk(solver, batch_size, metric, num_test, num_val), static_argnames="length"
        )
    return _CACHE[key]


def _jitted_sweep(
    solver: Solver, batch_size, metric, num_test, num_val, num_steps, eval_every, data_per_seed, keep=()
):
    key = (
        "sweep",
        keep,
        _solver_key(solver),
        batch_size,
        metric,
        num_test,
        num_val,
        num_steps,
        eval_every,
        data_per_seed,
    )
    if key in _CACHE:
        return _CACHE[key]
    chunk = _make_chunk(solver, batch_size, metric, num_test, num_val)
    full, rest = divmod(num_steps, eval_every)

    sign = -1.0 if metric == "mse" else 1.0
    scored = {"train-val": "val", "oracle": "test_mean"}

    def tracked(c, length, batch, test, val):
        # One chunk, then the kept states: the state at the first evaluation with the best score so far
        # (the step `_select` picks), for each selection in ``keep``.
        inner, best = c
        inner, record = chunk(inner, batch, test, val, length)
        new_best = {}
        for name, (score, kept) in best.items():
            value = sign * record[scored[name]]
            better = value > score
            new_best[name] = (jnp.where(better, value, score), tree_where(better, inner[0], kept))
        return (inner, new_best), record

    def one_run(seed, hparams, batch, test, val):
        k_init, k_run = jax.random.split(jax.random.key(seed))
        state = solver.init(k_init, batch, hparams)
        best = {name: (jnp.asarray(-jnp.inf, jnp.float32), state) for name in keep}
        carry, records = jax.lax.scan(
            lambda c, _: tracked(c, eval_every, batch, test, val), ((state, k_run), best), None, length=full
        )
        if rest:
            carry, last = tracked(carry, rest, batch, test, val)
            records = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]), records, last)
        (final, _), best = carry
        if keep:
            return (final, {name: kept for name, (_, kept) in best.items()}), records
        return final, records

    if data_per_seed:
        # Seeds outside, grid inside: the grid's runs share their seed's dataset, so the model's forward
        # pass is one [n, d] @ [d, G] product per seed instead of G matrix-vector products over G copies.
        def one_run_per_seed_data(seed, index, hparams, batch, test, val):
            batch, test, val = jax.tree_util.tree_map(lambda a: a[index], (batch, test, val))
            if not hparams:  # no grid: one run per seed
                out = one_run(seed, hparams, batch, test, val)
                return jax.tree_util.tree_map(lambda a: a[None], out)
            return jax.vmap(one_run, in_axes=(None, 0, None, None, None))(seed, hparams, batch, test, val)

        run = jax.vmap(one_run_per_seed_data, in_axes=(0, 0, 0, None, None, None))
    else:

        def one_run_shared_data(seed, index, hparams, batch, test, val):
            del index
            return one_run(seed, hparams, batch, test, val)

        run = jax.vmap(one_run_shared_data, in_axes=(0, 0, 0, None, None, None))
    _CACHE[key] = jax.jit(run)
    return _CACHE[key]


# ----------------------------------------------------------------------------------------------------------
# fit


def fit(
    solver: Solver,
    key: jax.Array,
    batch: Batch,
    num_steps: int,
    *,
    hparams: Mapping[str, float] | None = None,
    test: Batch | None = None,
    val: Batch | None = None,
    eval_every: int = 100,
    batch_size: int | None = None,
    metric: str | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Trains one run with `lax.scan` in chunks of ``eval_every`` steps, evaluating after every chunk.

    Progress is reported between chunks (a progress bar on an interactive terminal, off when ``CI`` is set),
    never from inside the compiled loop. A run whose loss, parameters or optimizer states (e.g. an overflowing
    Adam second moment, which would zero every update) turn non-finite is frozen at its last finite state
    and flagged (``history["diverged"]``, a warning).

    Args:
      solver: a `Solver` from `jaxirm.solvers`.
      key: PRNG key (``jax.random.key``) for the initialisation and the minibatches.
      batch: the training `Batch` (full batch; minibatches are drawn from it when ``batch_size`` is set).
      num_steps: number of steps.
      hparams: hyperparameters overriding the solver's defaults (``solver.defaults`` lists the names).
      test: test `Batch` with integer environment labels: per-environment metrics, mean and worst.
      val: held-out `Batch` of the training environments, for ``"train-val"`` selection.
      eval_every: steps between evaluations (the last evaluation is always after the last step).
      batch_size: minibatch size (None: full batch). Use a solver built with ``split=True`` for unbiased
        penalty estimates on minibatches.
      metric: ``"accuracy"`` or ``"mse"``; default from the solver's loss.
      progress: show a progress bar (default: only on an interactive terminal without ``CI``).

    Returns:
      A `FitResult`.

    Raises:
      ValueError: NaN or infinite values in x, y or z; labels out of range (class labels of a multiclass
        loss must lie below the model's number of outputs); negative environment weights; missing z for a
        solver that infers environments; missing envs; ``test.x``/``val.x`` with another number of
        features than ``batch.x``; bad sizes (``num_steps``, ``eval_every`` < 1, ``batch_size`` outside
        [2, n]); unknown hparams or metric, or an hparam that is not a scalar.
      TypeError: arguments of the wrong type, e.g. a ``solver`` that is not a `Solver` (a bare flax
        model) or a ``key`` that is not a PRNG key (an int).
    """
    _check_solver(solver)
    key = _v.check_key(key)
    num_steps = _check_int("num_steps", num_steps)
    _check_min_steps(solver, num_steps)
    eval_every = _check_int("eval_every", eval_every)
    batch, _ = _check_batch(solver, batch, "batch")
    batch_size = _check_batch_size(solver, batch_size, batch.x.shape[0])
    test, num_test = (None, None) if test is None else _check_batch(solver, test, "test", test=True)
    val, num_val = (None, None) if val is None else _check_batch(solver, val, "val", test=True)
    for name, other in (("test", test), ("val", val)):
        if other is not None:
            _check_features(name, other.x, batch.x)
    metric = _metric_name(solver, metric)
    check_hparams(solver.name, solver.defaults, hparams, scalar=True)
    _check_classes(solver, batch, {"batch": batch, "test": test, "val": val})
    k_init, k_run = jax.random.split(key)
    state = solver.init(k_init, batch, hparams)

    chunk = _jitted_chunk(solver, batch_size, metric, num_test, num_val)
    records = []
    carry = (state, k_run)
    lengths = _lengths(num_steps, eval_every)
    bar = None
    if _progress_enabled(progress):
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(solver.name, total=num_steps)
    try:
        for length in lengths:
            carry, record = chunk(carry, batch, test, val, length=length)
            records.append(record)  # left on the device: the next chunk is dispatched without waiting
            if bar is not None:
                jax.block_until_ready(record)
                bar.update(task, advance=length)
    finally:
        if bar is not None:
            bar.stop()
    state = carry[0]
    records = jax.device_get(records)
    history = {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}
    if bool(history["diverged"][-1]):
        first = int(history["step"][np.argmax(history["diverged"])])
        warnings.warn(
            f"{solver.name}: the loss or the training state (parameters, optimizer moments) turned "
            f"non-finite by step {first}; the run was frozen at its last finite state",
            RuntimeWarning,
            stacklevel=2,
        )
    selection = {
        name: {k: float(v) for k, v in sel.items()} for name, sel in _select(history, metric).items()
    }
    return FitResult(state=state, history=history, selection=selection, metric=metric)


# ----------------------------------------------------------------------------------------------------------
# sweep


def _check_stacked(solver, batch, name, stacked: bool, num_seeds: int, test: bool = False):
    """`_check_batch` on every per-seed slice of a stacked batch (or on the batch itself)."""
    if not stacked:
        return _check_batch(solver, batch, name, test=test)
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
        one, num = _check_batch(solver, one, f"{name}[{i}]", test=test)
        slices.append(one)
        nums.append(num)
    stacked_batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *slices)
    return stacked_batch, (max(nums) if test else None)


def _grid_configs(solver: Solver, seeds, grid: Mapping[str, Sequence[float]] | None, points=None):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(_check_int("seeds", seeds)))
    seeds_arr = np.asarray(seeds)
    if seeds_arr.ndim != 1 or seeds_arr.size == 0 or not np.issubdtype(seeds_arr.dtype, np.integer):
        raise ValueError(f"seeds must be a positive int or a non-empty 1-D list of ints, got {seeds!r}")
    for i, seed in enumerate(seeds_arr.tolist()):  # they travel as uint32 to jax.random.key
        _v.check_seed(seed, f"seeds[{i}]", upper=_v.UINT32_SEEDS)
    if grid is not None and not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict {{name: values}}, got {type(grid).__name__}")
    if points is not None:
        if grid is not None:
            raise ValueError("pass either grid or configs to sweep, not both")
        return _point_configs(solver, seeds_arr, points)
    grid = dict(grid or {})
    names = list(grid)
    values = []
    for name in names:
        if name not in solver.defaults:
            raise ValueError(
                f"grid: unknown hyperparameter {name!r} for {solver.name}; expected {sorted(solver.defaults)}"
            )
        try:
            arr = np.asarray(grid[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"grid[{name!r}] must be a non-empty 1-D sequence of numbers, got {grid[name]!r}"
            ) from None
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"grid[{name!r}] must be a non-empty 1-D sequence of numbers, got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"grid[{name!r}] must hold finite numbers")
        try:
            check_hparams(solver.name, solver.defaults, {name: arr})
        except ValueError as err:
            raise ValueError(f"grid[{name!r}]: {err}") from None
        values.append(arr)
    configs = []
    for seed in seeds_arr.tolist():
        for combo in itertools.product(*values) if values else [()]:
            configs.append({"seed": int(seed), **{n: float(v) for n, v in zip(names, combo, strict=True)}})
    return configs, names, math.prod(arr.size for arr in values)


def _point_configs(solver: Solver, seeds_arr: np.ndarray, points):
    """Runs for an explicit list of hyperparameter points (e.g. a random search), seed-major."""
    if isinstance(points, Mapping) or not isinstance(points, Sequence) or not points:
        raise TypeError(f"configs must be a non-empty list of dicts {{name: value}}, got {points!r}")
    names = list(points[0]) if isinstance(points[0], Mapping) else []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping) or sorted(point) != sorted(names):
            raise ValueError(
                f"configs[{i}] must be a dict with the same names as configs[0] ({names}), got {point!r}"
            )
        try:
            check_hparams(solver.name, solver.defaults, point, scalar=True)
        except (TypeError, ValueError) as err:
            raise type(err)(f"configs[{i}]: {err}") from None
    configs = [
        {"seed": int(seed), **{n: float(point[n]) for n in names}}
        for seed in seeds_arr.tolist()
        for point in points
    ]
    return configs, names, len(points)


def sweep(
    solver: Solver,
    batch: Batch,
    num_steps: int,
    *,
    seeds: int | Sequence[int] = 10,
    grid: Mapping[str, Sequence[float]] | None = None,
    test: Batch | None = None,
    val: Batch | None = None,
    eval_every: int = 100,
    batch_size: int | None = None,
    metric: str | None = None,
    mesh: jax.sharding.Mesh | None = None,
    data_per_seed: bool = False,
    configs: Sequence[Mapping[str, float]] | None = None,
    keep_selected: bool = False,
) -> SweepResult:
    """Runs seeds × a hyperparameter grid as one vmapped, jitted computation sharded over every device.

    The runs are the cartesian product of ``seeds`` and the grid values (seed-major). Hyperparameters are data
    (``state.hparams``), so the whole sweep is one compile. The run axis is padded to a multiple of the device
    count and sharded over a one-axis mesh (``("sweep",)``, axis type Auto); on many hosts, call
    `jax.distributed.initialize` first and pass a mesh over `jax.devices()` — nothing else changes. A run
    whose loss, parameters or optimizer states turn non-finite is frozen and flagged without touching the
    others.

    Args:
      solver: a `Solver`.
      batch: the training `Batch`, shared by every run.
      num_steps: steps per run.
      seeds: number of seeds (0 … seeds−1) or a list of integer seeds.
      grid: ``{name: values}`` over the solver's hyperparameters (``solver.defaults``), e.g.
        ``{"lam": [10, 100, 1000]}``; unlisted names keep their defaults.
      test: test `Batch` with integer environment labels.
      val: held-out training-environment `Batch` for ``"train-val"`` selection.
      eval_every: steps between evaluations.
      batch_size: minibatch size (None: full batch).
      metric: ``"accuracy"`` or ``"mse"``; default from the solver's loss.
      mesh: a one-axis `jax.sharding.Mesh` named ``"sweep"``; default all devices.
      data_per_seed: the arrays of ``batch``, ``test`` and ``val`` carry a leading axis with one dataset per
        seed (in the order of ``seeds``), as the papers regenerate the data for every repeat.
      configs: instead of a ``grid``, an explicit list of hyperparameter points ``[{name: value}, ...]``
        (every point with the same names), e.g. from `jaxirm.search_space` ``.sample``; the runs are seeds ×
        points, still one compile (the values are data).
      keep_selected: also return each run's state at the ``train-val`` (with ``val``) and ``oracle`` (with
        ``test``) selected steps (`SweepResult.selected_states`), e.g. to save them with
        `jaxirm.checkpoint.save`; costs one extra state per selection in memory, no extra evaluation.

    Returns:
      A `SweepResult`.

    Raises:
      ValueError: as in `fit`; a grid value that is not a non-empty 1-D sequence of finite numbers, an
        unknown hyperparameter name, bad seeds (each must lie in [0, 2**32): they travel as uint32), or a
        mesh without a ``"sweep"`` axis.
      TypeError: arguments of the wrong type (a grid that is not a dict, grid values that are not
        numbers).
    """
    _check_solver(solver)
    num_steps = _check_int("num_steps", num_steps)
    _check_min_steps(solver, num_steps)
    eval_every = _check_int("eval_every", eval_every)
    configs, names, num_grid = _grid_configs(solver, seeds, grid, configs)
    num_seeds = len({c["seed"] for c in configs})
    batch, _ = _check_stacked(solver, batch, "batch", data_per_seed, num_seeds)
    n = batch.x.shape[1 if data_per_seed else 0]
    batch_size = _check_batch_size(solver, batch_size, n)
    test, num_test = (
        (None, None) if test is None else _check_stacked(solver, test, "test", data_per_seed, num_seeds, True)
    )
    val, num_val = (
        (None, None) if val is None else _check_stacked(solver, val, "val", data_per_seed, num_seeds, True)
    )
    lead = 2 if data_per_seed else 1
    for name, other in (("test", test), ("val", val)):
        if other is not None:
            _check_features(name, other.x, batch.x, lead)
    _check_classes(solver, batch, {"batch": batch, "test": test, "val": val}, stacked=data_per_seed)
    metric = _metric_name(solver, metric)
    if mesh is None:
        mesh = jax.make_mesh((jax.device_count(),), ("sweep",), axis_types=(jax.sharding.AxisType.Auto,))
    if "sweep" not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named 'sweep', got axes {mesh.axis_names}")

    runs = len(configs)
    sharding = NamedSharding(mesh, P("sweep"))
    shards = mesh.shape["sweep"]
    order = {seed: i for i, seed in enumerate(dict.fromkeys(c["seed"] for c in configs))}
    if data_per_seed:
        # One entry per seed on the sharded axis, the grid inside (configs are seed-major).
        rows = [configs[i : i + num_grid] for i in range(0, runs, num_grid)]
    else:
        rows = [[c] for c in configs]
    padded = -(-len(rows) // shards) * shards
    rows = rows + [rows[-1]] * (padded - len(rows))
    seeds_arr = jax.device_put(np.asarray([r[0]["seed"] for r in rows], dtype=np.uint32), sharding)
    data_index = jax.device_put(np.asarray([order[r[0]["seed"]] for r in rows], np.int32), sharding)
    hp = {
        n: np.asarray([[c[n] for c in r] for r in rows], dtype=np.float32).reshape(
            (padded, num_grid) if data_per_seed else (padded,)
        )
        for n in names
    }
    hp = jax.device_put(hp, sharding)

    keep = tuple(
        name
        for name, there in (("train-val", val is not None), ("oracle", test is not None))
        if keep_selected and there
    )
    run_all = _jitted_sweep(
        solver, batch_size, metric, num_test, num_val, num_steps, eval_every, data_per_seed, keep
    )
    states, history = run_all(seeds_arr, data_index, hp, batch, test, val)
    states, kept = states if keep else (states, None)
    if kept is not None and data_per_seed:
        kept = jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), kept)
    if kept is not None:
        kept = jax.tree_util.tree_map(lambda a: np.asarray(a)[:runs], jax.device_get(kept))
    if data_per_seed:
        flatten = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
        states, history = jax.tree_util.tree_map(flatten, (states, history))
    states, history = jax.device_get((states, history))
    trim = lambda a: np.asarray(a)[:runs]  # noqa: E731
    states = jax.tree_util.tree_map(trim, states)
    history = {k: trim(v) for k, v in history.items()}
    selection = {
        name: {k: np.asarray(v) for k, v in sel.items()} for name, sel in _select(history, metric).items()
    }
    return SweepResult(
        configs=configs,
        state=states,
        history=history,
        selection=selection,
        diverged=np.asarray(states.diverged),
        metric=metric,
        selected_states=kept,
    )
