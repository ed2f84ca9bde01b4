"""The types every layer shares: `Batch`, `LossFn`, `PyTree`, `Metrics`, `Hparams`.

One definition each, re-exported where users meet them (`jaxirm.Batch`, `jaxirm.solvers.Batch`,
`jaxirm.losses.LossFn`, `jaxirm.risks.LossFn`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax

__all__ = ["Batch", "FrozenMap", "Hparams", "LossFn", "Metrics", "PyTree", "Solver", "SolverState"]

PyTree = Any
"""A JAX pytree (parameters, optimizer states, solver states)."""

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
"""``loss_fn(logits [n] or [n, C], y [n]) -> [n]`` per-example losses."""

Metrics = dict[str, jax.Array]
"""Per-step training metrics: float32 scalars by name (``loss``, ``risk``, ``penalty``, ``lam``, …)."""

Hparams = Mapping[str, float]
"""Swept hyperparameters by name (``lam``, ``l2``, ``anneal_steps``, ``lr``, …)."""


class Batch(NamedTuple):
    """A (full or mini) batch of training data.

    Attributes:
      x: ``[n, ...]`` inputs.
      y: ``[n]`` targets.
      envs: ``[n]`` int environment labels or ``[n, E]`` weights (may be None for solvers that infer them).
      z: ``[n, k]`` auxiliary variables for environment inference, or None.
      xt: None, or the ``[n, d]`` inputs x stored features-first, ``[d, n]``.
      zt: None, or the ``[n, k]`` auxiliary variables z stored features-first, ``[k, n]``.

    Leave ``xt`` and ``zt`` None: `jaxirm.run`, `jaxirm.fit` and `jaxirm.sweep` fill them once per compiled
    loop (outside the steps) for full-batch training of a solver whose ``features_first`` is set, whose step
    then computes on them directly (2–3× faster on CPU for the papers' narrow models).
    """

    x: jax.Array
    y: jax.Array
    envs: jax.Array | None = None
    z: jax.Array | None = None
    xt: jax.Array | None = None
    zt: jax.Array | None = None


class FrozenMap(Mapping):
    """An immutable, hashable mapping (a solver's default hyperparameters), so a `Solver` can be a static
    argument of `jax.jit`.

    Equal and of equal hash when the items are equal; reads like a dict (``m["lam"]``, ``dict(m)``, ``in``).
    """

    __slots__ = ("_items", "_hash")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = dict(items or {})
        self._hash = None

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(sorted((k, _hashable(v)) for k, v in self._items.items())))
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class SolverState(NamedTuple):
    """Everything a solver carries from step to step; all leaves are arrays, so states stack under vmap.

    Attributes:
      step: int32 scalar, the number of steps taken.
      params: the model's parameters Φ.
      opt_state: the optax state of Φ's optimizer.
      dual_params: the ascending players' parameters, ``{"rho": ..., "psi": ...}`` (empty for ERM/IRM).
      dual_opt_state: their optax states, same keys.
      hparams: swept hyperparameters as float32 scalars (``lam``, ``l2``, ``anneal_steps``, …).
      aux: solver-specific arrays (z standardisation statistics, EIIL's inferred environments, …).
      diverged: bool scalar; once True the state is frozen at its last finite value.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    dual_params: PyTree
    dual_opt_state: PyTree
    hparams: dict
    aux: dict
    diverged: jax.Array


class _SolverFields(NamedTuple):
    """The fields of `Solver` (documented there)."""

    init: Callable[..., SolverState]
    step: Callable[[SolverState, Batch], tuple[SolverState, dict]]
    predict: Callable[[SolverState, jax.Array], jax.Array]
    name: str
    defaults: Mapping[str, float]
    needs_z: bool = False
    num_envs: int | None = None
    uses_envs: bool = False
    loss_kind: str | None = None
    full_batch: bool = False
    min_steps: int = 1
    features_first: bool = False
    refresh: Callable[[SolverState, Batch], SolverState] | None = None


class Solver(_SolverFields):
    """A pair of pure functions, as in optax, plus the prediction function used for evaluation.

    Attributes:
      init: ``init(key, batch, hparams=None) -> SolverState``.
      step: ``step(state, batch) -> (state, metrics)``, metrics a dict of float32 scalars.
      predict: ``predict(state, x) -> logits`` of the model Φ.
      name: the method's name (e.g. ``"IRM-TV-l1"``).
      defaults: the default hyperparameters (the keys ``init`` accepts in ``hparams``).
      needs_z: whether batches must carry the auxiliary variable ``z`` (environment inference).
      num_envs: the number of environment labels the batches' ``envs`` use (None: weights or unused).
      uses_envs: whether the batches' ``envs`` are read at all.
      loss_kind: ``"binary"``, ``"regression"``, ``"multiclass"`` or None (a user's loss).
      full_batch: the solver keeps per-example state (EIIL's assignments), so it cannot take minibatches.
      min_steps: the fewest steps that train the model Φ at all (EIIL: reference + inference steps + 1);
        `jaxirm.fit` and `jaxirm.sweep` refuse a smaller ``num_steps`` instead of returning an untrained
        model.
      features_first: ``step`` reads the batch's ``xt``/``zt`` (x and z stored ``[d, n]``, ``[k, n]``) when
        they are there, so the loops fill them for full-batch training of 2-D inputs; ``init`` still takes
        the batch as given and ``predict`` ``[n, d]`` inputs.
      refresh: None, or ``refresh(state, batch) -> state`` of a ``features_first`` solver: `jaxirm.run`,
        `jaxirm.fit` and `jaxirm.sweep` call it before each run of full-batch steps on ``batch`` (its
        ``xt``/``zt`` filled; the same batch at every step of the run), so that the solver may keep in
        ``state.aux`` what depends only on the batch and on players that stopped moving, instead of
        recomputing it each step (ρ's environments once ρ is frozen: ZIN-type games, TIVA). Its ``step``
        reads such a copy only on batches whose copies the loops filled, and recomputes it whenever the
        players moved or ``refresh`` marked it stale.

    A `Solver` is hashable (``defaults`` is stored as a `FrozenMap`; the functions hash by identity), so
    it can be a static argument of `jax.jit`: the compiled programs of `jaxirm.fit` and `jaxirm.sweep` are
    cached by JAX per solver and configuration.
    """

    __slots__ = ()

    def __new__(cls, init, step, predict, name, defaults, *args, **kwargs):
        return super().__new__(cls, init, step, predict, name, FrozenMap(defaults), *args, **kwargs)

    @classmethod
    def _make(cls, iterable):  # `_replace` builds through here: keep ``defaults`` frozen
        return cls(*iterable)
