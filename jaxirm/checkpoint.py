"""Saving and loading trained solver states (orbax-checkpoint, installed with flax).

    >>> import jaxirm
    >>> jaxirm.checkpoint.save(path, state, {"method": "IRM-TV-l1", "seed": 0})  # doctest: +SKIP
    >>> state, meta = jaxirm.load(path)  # doctest: +SKIP
    >>> logits = solver.predict(state, x)  # doctest: +SKIP

A checkpoint is a folder: ``state/`` (an orbax PyTree checkpoint of the `SolverState`) and ``meta.json``
(the method, solver name, hyperparameters, seed, selection, step and provenance). The loaded state has the
`SolverState` fields with the model parameters as saved, so ``solver.predict`` and `jaxirm.evaluate` accept
it; the optimizer states come back as plain dicts and lists (enough to predict and evaluate, not to resume
training with optax's own state types).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxirm.solvers._base import SolverState

__all__ = ["Checkpoint", "save", "load", "solver_of"]

_MISSING = "checkpoints need orbax-checkpoint (installed with flax): pip install orbax-checkpoint"


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as err:  # pragma: no cover - flax depends on it
        raise ImportError(_MISSING) from err
    return ocp


class Checkpoint(NamedTuple):
    """What `load` returns.

    Attributes:
      state: the `SolverState` (accepted by ``solver.predict`` and `jaxirm.evaluate`).
      metadata: the dict saved beside it (``method``, ``solver``, ``hparams``, ``seed``, ``selection``,
        ``step``, ``experiment``, ``provenance``, … as the saver wrote them).
    """

    state: SolverState
    metadata: dict


def _plain(tree: Any) -> Any:
    """numpy leaves; typed PRNG keys become their raw key data."""

    def leaf(a):
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return jax.tree_util.tree_map(leaf, jax.device_get(tree))


def save(path: str | os.PathLike, state: SolverState, metadata: Mapping[str, Any] | None = None) -> Path:
    """Saves one solver state (unbatched: one run) and its metadata to the folder ``path`` (replaced).

    Args:
      path: the checkpoint folder (created; an existing one is replaced).
      state: a `SolverState`.
      metadata: JSON-compatible facts about the run.

    Returns:
      The absolute path.

    Raises:
      TypeError: ``state`` is not a `SolverState`.
      ImportError: orbax-checkpoint is not installed.
    """
    if not isinstance(state, SolverState):
        raise TypeError(f"state must be a jaxirm SolverState, got {type(state).__name__}")
    ocp = _orbax()
    path = Path(path).absolute()
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    tree = {field: _plain(value) for field, value in state._asdict().items()}
    ocp.PyTreeCheckpointer().save(path / "state", tree)
    (path / "meta.json").write_text(json.dumps(dict(metadata or {}), indent=1, default=float) + "\n")
    return path


def load(path: str | os.PathLike) -> Checkpoint:
    """Loads a checkpoint written by `save` (or by ``reproduce(..., checkpoints=True)``).

    Args:
      path: the checkpoint folder.

    Returns:
      A `Checkpoint` ``(state, metadata)``; ``solver.predict(state, x)`` and
      ``jaxirm.evaluate(solver, state, batch, num_envs)`` accept the state (rebuild the solver with
      `solver_of` when the metadata name a registered experiment and method).

    Raises:
      FileNotFoundError: ``path`` holds no checkpoint.
      ImportError: orbax-checkpoint is not installed.
    """
    path = Path(path).absolute()
    if not (path / "state").is_dir():
        raise FileNotFoundError(f"{path} is not a jaxirm checkpoint (no state/ folder)")
    ocp = _orbax()
    tree = ocp.PyTreeCheckpointer().restore(path / "state")
    tree = jax.tree_util.tree_map(np.asarray, tree)
    fields = {field: tree.get(field, {}) for field in SolverState._fields}
    for field in ("dual_params", "dual_opt_state", "hparams", "aux"):
        if fields[field] is None:
            fields[field] = {}
    meta_file = path / "meta.json"
    metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    return Checkpoint(SolverState(**fields), metadata)


def solver_of(metadata: Mapping[str, Any]) -> Any:
    """The `Solver` of a checkpoint written by ``reproduce``: the registered experiment's method, rebuilt.

    Raises:
      KeyError: the metadata name no registered experiment or method (import the module registering it).
    """
    from jaxirm import experiments

    if "experiment" not in metadata or "method" not in metadata:
        raise KeyError("the checkpoint's metadata name no experiment and method; build the solver yourself")
    return experiments.get(metadata["experiment"]).method(metadata["method"]).build()
