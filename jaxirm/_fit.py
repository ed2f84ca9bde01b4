"""`fit`: one run, dispatched from Python in chunks of ``eval_every`` steps with evaluation and progress
between them, and model selection over the evaluated steps."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import numpy as np

from jaxirm import _validation as _v
from jaxirm._iterate import chunk_jit
from jaxirm._progress import progress_enabled
from jaxirm._solution import FitResult
from jaxirm._types import Batch, Solver
from jaxirm._validation import _batches as _bv
from jaxirm.selection import select_steps

__all__ = ["fit"]


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
    _bv.check_solver(solver)
    key = _v.check_key(key)
    num_steps = _v.check_int("num_steps", num_steps, 1)
    _bv.check_min_steps(solver, num_steps)
    eval_every = _v.check_int("eval_every", eval_every, 1)
    batch, test, val, num_test, num_val, batch_size, metric = _bv.check_inputs(
        solver, batch, test=test, val=val, batch_size=batch_size, metric=metric, hparams=hparams
    )
    k_init, k_run = jax.random.split(key)
    state = solver.init(k_init, batch, hparams)

    records = []
    carry = (state, k_run)
    full, rest = divmod(num_steps, eval_every)
    lengths = [eval_every] * full + ([rest] if rest else [])
    bar = None
    if progress_enabled(progress):
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(solver.name, total=num_steps)
    try:
        for length in lengths:
            carry, record = chunk_jit(
                solver, batch_size, metric, num_test, num_val, carry, batch, test, val, length=length
            )
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
        name: {k: float(v) for k, v in sel.items()} for name, sel in select_steps(history, metric).items()
    }
    return FitResult(state=state, history=history, selection=selection, metric=metric)
