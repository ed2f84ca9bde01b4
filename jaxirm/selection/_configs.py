"""Selection of a configuration (hyperparameter point × seeds) in a search, as DomainBed's protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxirm.selection._steps import CONFIG_SELECTIONS


class Choice(NamedTuple):
    """The configuration a selection rule picks from a search, with its validation and test numbers.

    Attributes:
      selection: the rule (one of `CONFIG_SELECTIONS`).
      index: the chosen point's index in the search's configurations.
      config: the chosen hyperparameters ``{name: value}``.
      score: its validation score, the mean over seeds (for ``oracle`` the test mean it was chosen by).
      score_std: the standard deviation of that score over seeds.
      scores: ``[P]`` the mean validation score of every point (NaN for a point every seed diverged on).
      seeds: the seeds, in order.
      step: ``[S]`` the selected step per seed.
      test_mean: ``[S]`` the chosen configuration's test mean per seed at its selected step.
      test_worst: ``[S]`` its test worst per seed.
      diverged: ``[S]`` whether the chosen configuration's run of that seed diverged.
    """

    selection: str
    index: int
    config: dict
    score: float
    score_std: float
    scores: np.ndarray
    seeds: list
    step: np.ndarray
    test_mean: np.ndarray
    test_worst: np.ndarray
    diverged: np.ndarray

    def summary(self) -> dict:
        """A JSON-friendly dict: the configuration, validation score and test mean ± std over seeds."""
        return {
            "selection": self.selection,
            "config": dict(self.config),
            "val": float(self.score),
            "val_std": float(self.score_std),
            "seeds": len(self.seeds),
            "test_mean": float(np.mean(self.test_mean)),
            "test_mean_std": float(np.std(self.test_mean)),
            "test_worst": float(np.mean(self.test_worst)),
            "test_worst_std": float(np.std(self.test_worst)),
            "selected_steps": [int(s) for s in self.step],
            "diverged": int(np.sum(self.diverged)),
        }


def _layout(configs: Sequence[Mapping[str, Any]]) -> tuple[list, list]:
    """(seeds, points) of seed-major sweep configs; every seed must run the same points."""
    seeds = list(dict.fromkeys(c["seed"] for c in configs))
    if len(configs) % len(seeds):
        raise ValueError("select_config needs every seed to run the same configurations")
    num = len(configs) // len(seeds)
    points = [{k: v for k, v in c.items() if k != "seed"} for c in configs[:num]]
    for i, c in enumerate(configs):
        if c["seed"] != seeds[i // num] or {k: v for k, v in c.items() if k != "seed"} != points[i % num]:
            raise ValueError(
                "select_config needs seed-major configs (seeds × the same points), as sweep runs"
            )
    return seeds, points


def _best(metric: str):
    return (np.nanargmin, np.nanmin) if metric == "mse" else (np.nanargmax, np.nanmax)


def _rank(metric: str, run_scores: np.ndarray) -> tuple[int, np.ndarray]:
    """The best point by its mean score over seeds (axis 0); NaN scores (diverged) rank last."""
    with np.errstate(all="ignore"), _quiet():
        means = np.nanmean(run_scores, axis=0)
    if np.all(np.isnan(means)):
        return 0, means
    return int(_best(metric)[0](means)), means


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def select_config(
    result: Any, selection: str = "train-val", *, held_out: Sequence[Any] | None = None
) -> Choice:
    """Chooses a configuration of a search (a `jaxirm.sweep` over seeds × points) by one selection rule.

    As DomainBed: every run's step is chosen by the rule (the best validation value over its evaluations),
    the configuration with the best *mean over seeds* of that value is chosen, and its test numbers at each
    seed's selected step are reported (mean ± std over seeds by `Choice.summary`). Diverged runs score NaN and
    never win unless every run diverged.

    Args:
      result: a `jaxirm.SweepResult` run with a ``test`` batch (and a ``val`` batch for ``train-val``).
      selection: ``"train-val"``, ``"leave-one-env-out"`` or ``"oracle"``.
      held_out: for ``"leave-one-env-out"``, the sweeps of `leave_one_env_out` (one per held-out training
        environment, the same seeds, points, steps and evaluation schedule as ``result``).

    Returns:
      A `Choice`.

    Raises:
      ValueError: an unknown selection; a result without the histories the rule needs (no ``val`` for
        ``train-val``, no ``held_out`` sweeps for ``leave-one-env-out``, no test batch); held-out sweeps
        that do not match ``result``.
    """
    if selection not in CONFIG_SELECTIONS:
        raise ValueError(
            f"unknown configuration selection {selection!r}; expected one of {CONFIG_SELECTIONS}"
        )
    history, metric = result.history, result.metric
    if "test_mean" not in history:
        raise ValueError("select_config needs a sweep run with a test batch (test numbers to report)")
    seeds, points = _layout(result.configs)
    shape = (len(seeds), len(points))
    diverged = np.asarray(result.diverged, bool).reshape(shape)
    argbest, best = _best(metric)
    if selection == "train-val":
        if "val" not in history:
            raise ValueError(
                "train-val selection needs a sweep run with a val batch (held-out training rows)"
            )
        val = np.where(np.isfinite(history["val"]), history["val"], np.nan)
        idx, run_scores = _best_steps(val, metric, argbest)
    elif selection == "leave-one-env-out":
        if not held_out:
            raise ValueError(
                "leave-one-env-out selection needs the held-out sweeps of jaxirm.selection.leave_one_env_out"
            )
        for other in held_out:
            if list(other.configs) != list(result.configs) or not np.array_equal(
                other.history["step"], history["step"]
            ):
                raise ValueError(
                    "held_out sweeps must run the same seeds, configurations, steps and eval_every as result"
                )
        # Per step, the held-out environments' metric averaged over the held-out sweeps.
        val = np.mean([np.asarray(o.history["val"], np.float64) for o in held_out], axis=0)
        val = np.where(np.isfinite(val), val, np.nan)
        idx, run_scores = _best_steps(val, metric, argbest)
    else:  # oracle
        sel = result.selection["oracle"]
        run_scores = np.asarray(sel["test_mean"], np.float64)
        idx = None
    run_scores = np.where(diverged.reshape(-1), np.nan, run_scores).reshape(shape)
    index, means = _rank(metric, run_scores)
    runs = np.arange(len(seeds)) * len(points) + index
    if selection == "oracle":
        sel = result.selection["oracle"]
        step, mean, worst = (np.asarray(sel[k])[runs] for k in ("step", "test_mean", "test_worst"))
    else:
        at = idx[runs]
        pick = lambda a: np.take_along_axis(np.asarray(a)[runs], at[:, None], -1)[:, 0]  # noqa: E731
        step, mean, worst = pick(history["step"]), pick(history["test_mean"]), pick(history["test_worst"])
    with _quiet():
        score_std = float(np.nanstd(run_scores[:, index]))
    return Choice(
        selection=selection,
        index=index,
        config=dict(points[index]),
        score=float(means[index]),
        score_std=score_std,
        scores=means,
        seeds=seeds,
        step=np.asarray(step),
        test_mean=np.asarray(mean, np.float64),
        test_worst=np.asarray(worst, np.float64),
        diverged=diverged[:, index],
    )


def _best_steps(val: np.ndarray, metric: str, argbest) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the evaluation with the best validation score (NaN: diverged, never best; the last step when
    every score is NaN) and that score."""
    with _quiet():
        idx = np.where(
            np.all(np.isnan(val), -1),
            val.shape[-1] - 1,
            argbest(np.where(np.isnan(val), _worst(metric), val), -1),
        )
    return idx, np.take_along_axis(val, idx[:, None], -1)[:, 0]


def _worst(metric: str) -> float:
    return np.inf if metric == "mse" else -np.inf


def _split(batch, held: int, data_per_seed: bool):
    """(training batch without environment ``held``, validation batch of it) with equal sizes per seed."""
    from jaxirm.solvers import Batch

    envs = np.asarray(batch.envs)
    arrays = [None if a is None else np.asarray(a) for a in batch]
    if not data_per_seed:
        arrays = [None if a is None else a[None] for a in arrays]
        envs = envs[None]
    keep = [np.flatnonzero(e != held) for e in envs]
    out = [np.flatnonzero(e == held) for e in envs]
    n_keep, n_out = min(len(k) for k in keep), min(len(o) for o in out)
    if n_keep == 0 or n_out == 0:
        raise ValueError(f"leave-one-env-out: environment {held} or the others hold no rows")

    def take(rows, n):
        return [None if a is None else np.stack([a[s][r[:n]] for s, r in enumerate(rows)]) for a in arrays]

    train, val = take(keep, n_keep), take(out, n_out)
    val[2] = np.zeros_like(val[2], dtype=np.int32)  # one validation environment
    val[3] = None
    if not data_per_seed:
        train = [None if a is None else a[0] for a in train]
        val = [None if a is None else a[0] for a in val]
    return Batch(*train), Batch(*val)


def leave_one_env_out(
    solver: Any,
    batch: Any,
    num_steps: int,
    *,
    seeds: int | Sequence[int] = 10,
    grid: Mapping[str, Sequence[float]] | None = None,
    configs: Sequence[Mapping[str, float]] | None = None,
    eval_every: int = 100,
    batch_size: int | None = None,
    metric: str | None = None,
    data_per_seed: bool = False,
    mesh: Any = None,
) -> list:
    """The held-out sweeps of leave-one-environment-out selection: one `jaxirm.sweep` per training env.

    For each training environment e, the same seeds × configurations are trained on the other environments'
    rows and evaluated on e's rows (``history["val"]``); `select_config` with
    ``selection="leave-one-env-out"`` averages these over e. Cost: E extra sweeps of the same size on
    (E−1)/E of the rows — about E times the search itself. The held-out environment keeps its label in the
    training batch with no rows (a padding environment: the uniform measure and the risks leave it out).
    With one dataset per seed, rows are cut to the smallest per-seed count so the sweep keeps one shape.

    Args:
      solver: the `Solver` of the search.
      batch: the training `Batch`; ``envs`` must be integer labels.
      num_steps: steps per run (the search's own, so the evaluation steps line up).
      seeds: as `jaxirm.sweep`.
      grid: as `jaxirm.sweep`.
      configs: as `jaxirm.sweep`.
      eval_every: as `jaxirm.sweep` (the search's own).
      batch_size: as `jaxirm.sweep`.
      metric: as `jaxirm.sweep`.
      data_per_seed: as `jaxirm.sweep`.
      mesh: as `jaxirm.sweep`.

    Returns:
      A list of E `SweepResult`, in environment order.

    Raises:
      ValueError: ``batch.envs`` are not integer labels, or fewer than 3 training environments hold rows
        (with 2, each held-out sweep trains on one environment, where no invariance penalty means anything).
    """
    from jaxirm.loops import sweep

    envs = np.asarray(batch.envs) if batch.envs is not None else None
    if envs is None or not np.issubdtype(envs.dtype, np.integer):
        raise ValueError("leave-one-env-out needs integer environment labels in batch.envs")
    labels = sorted(set(np.unique(envs).tolist()))
    if len(labels) < 3:
        raise ValueError(
            f"leave-one-env-out needs >= 3 training environments, got {len(labels)} ({labels}); use "
            "train-val selection (held-out rows of the training environments) instead"
        )
    results = []
    for held in labels:
        train, val = _split(batch, held, data_per_seed)
        results.append(
            sweep(
                solver,
                train,
                num_steps,
                seeds=seeds,
                grid=grid,
                configs=configs,
                test=val,
                val=val,
                eval_every=eval_every,
                batch_size=batch_size,
                metric=metric,
                data_per_seed=data_per_seed,
                mesh=mesh,
            )
        )
    return results
