"""The shared loop: `run` (a `lax.scan` of ``solver.step``) and the chunk `fit` and `sweep` build on.

A chunk is ``length`` steps then one evaluation on the test and validation batches; `fit` dispatches its
chunks from Python (progress between them), `sweep` scans them inside one vmapped program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxirm import _validation as _v
from jaxirm._types import Batch, Metrics, Solver, SolverState
from jaxirm._validation._batches import check_solver
from jaxirm.envs import env_mass
from jaxirm.selection import evaluate, summarize_envs

__all__ = ["run"]


def minibatch(batch: Batch, key: jax.Array, size: int) -> Batch:
    """``size`` examples of ``batch`` drawn without replacement."""
    idx = jax.random.choice(key, batch.x.shape[0], (size,), replace=False)
    return jax.tree_util.tree_map(lambda a: a[idx], batch)


def features_first(batch: Batch) -> Batch:
    """``batch`` with ``xt``/``zt`` filled (x and z transposed, when they are 2-D): done once, outside the
    loop, so the steps of a ``features_first`` solver read them directly."""
    if batch.xt is None and batch.x.ndim == 2:
        batch = batch._replace(xt=batch.x.T)
    if batch.zt is None and batch.z is not None and jnp.ndim(batch.z) == 2:
        batch = batch._replace(zt=jnp.asarray(batch.z, jnp.float32).T)
    return batch


def scan_steps(
    solver: Solver,
    state: SolverState,
    key: jax.Array | None,
    batch: Batch,
    length: int,
    batch_size: int | None,
    *,
    metrics: bool = True,
) -> tuple[tuple[SolverState, Any], Metrics | None]:
    """``length`` steps of ``solver.step`` in one `lax.scan`; the key is split only to draw minibatches.

    With ``metrics=False`` the steps' metrics are dropped (None), so XLA computes only what the updates
    need; ``length`` 0 returns the inputs.
    """
    if length == 0:
        return (state, key), None
    if batch_size is None and solver.features_first:
        batch = features_first(batch)
        if solver.refresh is not None:  # the same batch at every step: the solver may cache what it fixes
            state = solver.refresh(state, batch)

    def body(carry, _):
        state, key = carry
        if batch_size is None:
            b = batch
        else:
            key, sub = jax.random.split(key)
            b = minibatch(batch, sub, batch_size)
        state, out = solver.step(state, b)
        return (state, key), (out if metrics else None)

    return jax.lax.scan(body, (state, key), None, length=length)


def run(
    solver: Solver,
    state: SolverState,
    batch: Batch,
    num_steps: int,
    *,
    key: jax.Array | None = None,
    batch_size: int | None = None,
) -> tuple[SolverState, Metrics]:
    """Takes ``num_steps`` steps of ``solver.step`` in one `jax.lax.scan`: the bare training loop.

    `jaxirm.fit` builds its chunks from the same scan (and adds evaluation, model selection and progress);
    use `run` to compose a solver in your own JAX program. It is pure and traceable: wrap it in `jax.jit`
    with ``solver``, ``num_steps`` and ``batch_size`` static (a `Solver` is hashable), `jax.vmap` it over
    states, or call it inside another scan.

    Args:
      solver: a `Solver` from `jaxirm.solvers`.
      state: its state, e.g. ``solver.init(key, batch)``.
      batch: the training `Batch` (x ``[n, ...]``, y ``[n]``, envs ``[n]`` or ``[n, E]``, z ``[n, k]``).
      num_steps: the number of steps (a static Python int >= 1).
      key: PRNG key for the minibatches; required with ``batch_size``.
      batch_size: None (every step sees the whole batch) or the size of a minibatch drawn at every step.

    Returns:
      ``(state, metrics)``: the state after the last step and every step's metrics stacked,
      ``{name: [num_steps]}`` (``loss``, ``risk``, ``penalty``, ``lam``, ``diverged``, …).

    Raises:
      TypeError: ``solver`` is not a `Solver`, ``batch`` not a `Batch`, ``num_steps`` not an int, or a
        ``batch_size`` without a ``key``.
      ValueError: ``num_steps`` < 1 or ``batch_size`` < 2.

    Examples:
      >>> import jax
      >>> import jaxirm
      >>> from jaxirm import solvers
      >>> from jaxirm.models import MLP
      >>> from jaxirm.datasets import logit_z, to_batch
      >>> train, _ = logit_z(0, n_train=200, n_test=8)
      >>> solver = solvers.irm(MLP(), penalty="tv_l1")
      >>> batch = to_batch(train, with_z=False)
      >>> state = solver.init(jax.random.key(0), batch)
      >>> state, metrics = jax.jit(jaxirm.run, static_argnums=(0, 3))(solver, state, batch, 50)
      >>> int(state.step), metrics["loss"].shape
      (50, (50,))
    """
    check_solver(solver)
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a jaxirm.solvers.Batch, got {type(batch).__name__}")
    num_steps = _v.check_int("num_steps", num_steps, 1)
    if batch_size is not None:
        batch_size = _v.check_int("batch_size", batch_size, 2)
        if key is None:
            raise TypeError("key is required with batch_size: the minibatches are drawn with it")
        key = _v.check_key(key)
    (state, _), metrics = scan_steps(solver, state, key, batch, num_steps, batch_size)
    return state, metrics


def chunk(
    solver: Solver,
    batch_size: int | None,
    metric: str,
    num_test: int | None,
    num_val: int | None,
    carry: tuple[SolverState, jax.Array],
    batch: Batch,
    test: Batch | None,
    val: Batch | None,
    length: int,
) -> tuple[tuple[SolverState, jax.Array], dict]:
    """``length`` steps, then one evaluation record: the last step's metrics, ``step``, and with a test
    batch ``test_env`` ``[E_test]``, ``test_mean``, ``test_worst``; with a validation batch ``val`` (the
    mean over its environments that hold examples)."""
    # The metrics of the chunk's last step only: the other steps' are never computed (XLA drops the loss
    # value, which no update needs), so a chunk is length − 1 steps without metrics and one with.
    (state, key), _ = scan_steps(solver, carry[0], carry[1], batch, length - 1, batch_size, metrics=False)
    (state, key), metrics = scan_steps(solver, state, key, batch, 1, batch_size)
    record = {k: v[-1] for k, v in metrics.items()}
    record["step"] = state.step
    if test is not None:
        per_env = evaluate(solver, state, test, num_test, metric)
        record["test_env"] = per_env
        counts = env_mass(test.envs, num_test).astype(per_env.dtype)
        record["test_mean"], record["test_worst"] = summarize_envs(per_env, counts, metric)
    if val is not None:
        present = env_mass(val.envs, num_val) > 0
        per_val = evaluate(solver, state, val, num_val, metric)
        record["val"] = jnp.sum(jnp.where(present, per_val, 0.0)) / jnp.sum(present)
    return (state, key), record


#: `chunk` compiled once per solver and static configuration; JAX's own cache keys on the (hashable)
#: solver, so nothing here grows by hand.
chunk_jit = jax.jit(chunk, static_argnums=(0, 1, 2, 3, 4), static_argnames=("length",))
