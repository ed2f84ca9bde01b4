"""`sweep`: seeds × a hyperparameter grid (or explicit points) as one vmapped, jitted program, the run axis
sharded over every device."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxirm import _validation as _v
from jaxirm._iterate import chunk
from jaxirm._solution import SweepResult
from jaxirm._tree import tree_where
from jaxirm._types import Batch, Solver
from jaxirm._validation import _batches as _bv
from jaxirm.selection import select_steps

__all__ = ["sweep"]


def _program(
    seeds: jax.Array,
    data_index: jax.Array,
    hp: dict,
    batch: Batch,
    test: Batch | None,
    val: Batch | None,
    *,
    solver: Solver,
    batch_size: int | None,
    metric: str,
    num_test: int | None,
    num_val: int | None,
    num_steps: int,
    eval_every: int,
    data_per_seed: bool,
    keep: tuple[str, ...],
    mesh: jax.sharding.Mesh,
):
    """Every run of a sweep: vmapped over the run (or seed) axis, each a scan of chunks; each device runs
    its shard of the run axis on its own (`jax.shard_map`)."""
    full, rest = divmod(num_steps, eval_every)

    sign = -1.0 if metric == "mse" else 1.0
    scored = {"train-val": "val", "oracle": "test_mean"}

    def tracked(c, length, batch, test, val):
        # One chunk, then the kept states: the state at the first evaluation with the best score so far
        # (the step `_select` picks), for each selection in ``keep``.
        inner, best = c
        inner, record = chunk(solver, batch_size, metric, num_test, num_val, inner, batch, test, val, length)
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
            if not hparams or all(a.shape[0] == 1 for a in jax.tree_util.tree_leaves(hparams)):
                # no grid, or a grid of one point (e.g. `reproduce`): one run per seed, without the inner
                # vmap (a second batching pass over the whole step costs tracing time, not only run time)
                hparams = jax.tree_util.tree_map(lambda a: a[0], hparams)
                out = one_run(seed, hparams, batch, test, val)
                return jax.tree_util.tree_map(lambda a: a[None], out)
            return jax.vmap(one_run, in_axes=(None, 0, None, None, None))(seed, hparams, batch, test, val)

        run = jax.vmap(one_run_per_seed_data, in_axes=(0, 0, 0, None, None, None))
    else:

        def one_run_shared_data(seed, index, hparams, batch, test, val):
            del index
            return one_run(seed, hparams, batch, test, val)

        run = jax.vmap(one_run_shared_data, in_axes=(0, 0, 0, None, None, None))
    # The runs are independent, so each device runs its shard with no communication. Left to the SPMD
    # partitioner, a reduction over the run axis inside the step (the "does any run need this branch" of
    # `jaxirm._tree.when`) became a cross-device all-reduce, a rendezvous of every device at every step
    # (ZIN's sweep 2.2-2.4 -> 1.9 s, OOD-TV-IRM's 0.9-1.0 -> 0.5 s on 2 CPU devices). ``check_vma=False``:
    # a solver's scan carry need not be annotated as varying over the mesh axis.
    run = jax.shard_map(
        run,
        mesh=mesh,
        in_specs=(P("sweep"), P("sweep"), P("sweep"), P(), P(), P()),
        out_specs=P("sweep"),
        check_vma=False,
    )
    return run(seeds, data_index, hp, batch, test, val)


#: The sweep program, compiled once per solver and static configuration (JAX's cache, keyed on the hashable
#: solver): the hyperparameters, seeds and data are arguments, so a whole grid shares one compile.
_STATIC = (
    "solver",
    "batch_size",
    "metric",
    "num_test",
    "num_val",
    "num_steps",
    "eval_every",
    "data_per_seed",
    "keep",
    "mesh",
)
_program_jit = jax.jit(_program, static_argnames=_STATIC)


def _grid_configs(solver: Solver, seeds, grid: Mapping[str, Sequence[float]] | None, points=None):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(_v.check_int("seeds", seeds, 1)))
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
            _v.check_hparams(solver.name, solver.defaults, {name: arr})
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
            _v.check_hparams(solver.name, solver.defaults, point, scalar=True)
        except (TypeError, ValueError) as err:
            raise type(err)(f"configs[{i}]: {err}") from None
    configs = [
        {"seed": int(seed), **{n: float(point[n]) for n in names}}
        for seed in seeds_arr.tolist()
        for point in points
    ]
    return configs, names, len(points)


class Prepared(NamedTuple):
    """A checked sweep, ready to compile or run: the program's arguments and static configuration."""

    args: tuple
    static: dict
    configs: list
    runs: int


def prepare(
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
) -> Prepared:
    """`sweep`'s first half: checks its arguments (before anything is compiled) and lays the runs out on the
    mesh. Takes `sweep`'s arguments; `run_prepared` is the second half."""
    _bv.check_solver(solver)
    num_steps = _v.check_int("num_steps", num_steps, 1)
    _bv.check_min_steps(solver, num_steps)
    eval_every = _v.check_int("eval_every", eval_every, 1)
    configs, names, num_grid = _grid_configs(solver, seeds, grid, configs)
    num_seeds = len({c["seed"] for c in configs})
    batch, test, val, num_test, num_val, batch_size, metric = _bv.check_inputs(
        solver,
        batch,
        test=test,
        val=val,
        batch_size=batch_size,
        metric=metric,
        stacked=data_per_seed,
        num_seeds=num_seeds,
    )
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
    static = dict(
        solver=solver,
        batch_size=batch_size,
        metric=metric,
        num_test=num_test,
        num_val=num_val,
        num_steps=num_steps,
        eval_every=eval_every,
        data_per_seed=data_per_seed,
        keep=keep,
        mesh=mesh,
    )
    return Prepared((seeds_arr, data_index, hp, batch, test, val), static, configs, runs)


def precompile(prepared: Prepared) -> jax.stages.Compiled:
    """Compiles the program of a `prepare`d sweep without running it.

    `jaxirm.experiments.reproduce` compiles the next method this way, in a thread, while the current one
    trains, and passes the result to `run_prepared`; with JAX's persistent compilation cache on
    (``jax_compilation_cache_dir``) the compilation is a load when the lowered program is in the cache.

    Returns:
      The compiled program: ``program(*prepared.args)`` runs the sweep.
    """
    return _program_jit.lower(*prepared.args, **prepared.static).compile()


def launch(prepared: Prepared, program: jax.stages.Compiled | None = None):
    """Starts a `prepare`d sweep on its devices and returns its outputs at once (JAX's asynchronous dispatch):
    `collect` waits for them. `run_prepared` is the two together.

    Args:
      prepared: the sweep (`prepare`).
      program: its compiled program (`precompile`, or one loaded from disk); None: compile it here (JAX's
        cache serves a program compiled before with the same solver and configuration).

    Raises:
      TypeError: ``program`` does not take the sweep's arguments.
    """
    if program is None:
        return _program_jit(*prepared.args, **prepared.static)
    return program(*prepared.args)


def collect(prepared: Prepared, outputs) -> SweepResult:
    """The `SweepResult` of a `launch`ed sweep (waits for its outputs)."""
    configs, runs, static = prepared.configs, prepared.runs, prepared.static
    metric, keep, data_per_seed = static["metric"], static["keep"], static["data_per_seed"]
    states, history = outputs
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
        name: {k: np.asarray(v) for k, v in sel.items()}
        for name, sel in select_steps(history, metric).items()
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


def run_prepared(prepared: Prepared, program: jax.stages.Compiled | None = None) -> SweepResult:
    """Runs a `prepare`d sweep and gathers its `SweepResult` (what `sweep` returns): `launch`, then
    `collect`."""
    return collect(prepared, launch(prepared, program))


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
    count and sharded over a one-axis mesh (``("sweep",)``, axis type Auto); each device runs its shard
    on its own (`jax.shard_map`: no communication between devices inside the loop); on many hosts, call
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
    return run_prepared(
        prepare(
            solver,
            batch,
            num_steps,
            seeds=seeds,
            grid=grid,
            test=test,
            val=val,
            eval_every=eval_every,
            batch_size=batch_size,
            metric=metric,
            mesh=mesh,
            data_per_seed=data_per_seed,
            configs=configs,
            keep_selected=keep_selected,
        )
    )
