"""Hyperparameter search spaces: declared ranges and a seeded, reproducible random sampler.

As DomainBed's ``hparams_registry``: every hyperparameter is drawn from its own stream, seeded by (seed,
name), so adding a hyperparameter to a space leaves the draws of the others unchanged. The sampled points
are a list of configurations that `jaxirm.sweep` (``configs=``) runs as data, in one compile;
`jaxirm.selection` chooses among them.

    >>> import jaxirm
    >>> space = jaxirm.search_space(lam=jaxirm.log_uniform(10, 1e4), lr=jaxirm.choice(0.01, 0.02))
    >>> points = space.sample(4, seed=0)
    >>> len(points), sorted(points[0])
    (4, ['lam', 'lr'])
    >>> points == space.sample(4, seed=0)
    True
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import zlib
from collections.abc import Mapping

import numpy as np

from jaxirm import _validation as _v

__all__ = ["Range", "SearchSpace", "choice", "log_uniform", "search_space", "uniform"]


@dataclasses.dataclass(frozen=True)
class Range:
    """One hyperparameter's range.

    Attributes:
      kind: ``"log-uniform"``, ``"uniform"`` or ``"choice"``.
      low: lower end (ranges).
      high: upper end (ranges).
      values: the candidates (``choice``).
    """

    kind: str
    low: float = 0.0
    high: float = 0.0
    values: tuple[float, ...] = ()

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` values from ``rng``."""
        if self.kind == "choice":
            return np.asarray(self.values, np.float64)[rng.integers(0, len(self.values), n)]
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, n)
        return np.exp(rng.uniform(math.log(self.low), math.log(self.high), n))

    def describe(self) -> str:
        """E.g. ``log-uniform [10, 10000]``."""
        if self.kind == "choice":
            return "choice {" + ", ".join(f"{v:g}" for v in self.values) + "}"
        return f"{self.kind} [{self.low:g}, {self.high:g}]"


def _number(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def log_uniform(low: float, high: float) -> Range:
    """Log-uniform on [low, high] (0 < low <= high), e.g. penalty weights and learning rates.

    Raises:
      ValueError: ``low`` <= 0 or ``low`` > ``high``.
    """
    low, high = _number("low", low), _number("high", high)
    if not 0 < low <= high:
        raise ValueError(f"log_uniform needs 0 < low <= high, got [{low}, {high}]")
    return Range("log-uniform", low, high)


def uniform(low: float, high: float) -> Range:
    """Uniform on [low, high].

    Raises:
      ValueError: ``low`` > ``high``.
    """
    low, high = _number("low", low), _number("high", high)
    if low > high:
        raise ValueError(f"uniform needs low <= high, got [{low}, {high}]")
    return Range("uniform", low, high)


def choice(*values: float) -> Range:
    """One of ``values``, uniformly (e.g. warm-up lengths).

    Raises:
      ValueError: no values.
    """
    if not values:
        raise ValueError("choice needs at least one value")
    return Range("choice", values=tuple(_number(f"choice value {i}", v) for i, v in enumerate(values)))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Named hyperparameter ranges (build with `search_space`).

    Attributes:
      ranges: ``{name: Range}``.
    """

    ranges: Mapping[str, Range]

    def sample(self, n: int, seed: int = 0, *, base: Mapping[str, float] | None = None) -> list[dict]:
        """``n`` random points, reproducible from ``seed`` (each name has its own stream: adding a name to the
        space does not change the others' draws).

        Args:
          n: number of points (>= 1).
          seed: the search's seed.
          base: a configuration to run as point 0 (e.g. the registered hyperparameters, DomainBed's
            "default" trial); its names outside the space are dropped. The others are random.

        Returns:
          ``n`` dicts ``{name: float}``.
        """
        n = _v.check_int("n", n, 1)
        columns = {
            name: r.draw(np.random.default_rng([int(seed), zlib.crc32(name.encode())]), int(n))
            for name, r in self.ranges.items()
        }
        points = [{name: float(col[i]) for name, col in columns.items()} for i in range(int(n))]
        if base is not None:
            points[0] = {name: float(base.get(name, points[0][name])) for name in self.ranges}
        return points

    def grid(self, num: int = 3) -> list[dict]:
        """The cartesian product of ``num`` points per range (log-spaced for log-uniform; every value of a
        choice), as a list of points."""
        axes = []
        for r in self.ranges.values():
            if r.kind == "choice":
                axes.append([float(v) for v in r.values])
            elif r.kind == "uniform":
                axes.append([float(v) for v in np.linspace(r.low, r.high, num)])
            else:
                axes.append([float(v) for v in np.geomspace(r.low, r.high, num)])
        names = list(self.ranges)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]

    def describe(self) -> dict[str, str]:
        """``{name: "log-uniform [10, 10000]", ...}``."""
        return {name: r.describe() for name, r in self.ranges.items()}


def search_space(**ranges: Range) -> SearchSpace:
    """A `SearchSpace` from keyword ranges, e.g. ``search_space(lam=log_uniform(10, 1e4), lr=...)``.

    Raises:
      TypeError: a value that is not a `Range` (use `log_uniform`, `uniform` or `choice`).
      ValueError: no ranges.
    """
    if not ranges:
        raise ValueError("search_space needs at least one range")
    for name, r in ranges.items():
        if not isinstance(r, Range):
            raise TypeError(f"{name} must be a Range (log_uniform, uniform or choice), got {r!r}")
    return SearchSpace(dict(ranges))
