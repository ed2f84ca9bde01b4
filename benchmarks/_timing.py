"""Reusable timing helpers for the benchmark harnesses.

The helpers separate compilation from execution (ahead-of-time ``lower().compile()``), block on every result
(`jax.block_until_ready`) and time several configurations *interleaved*: every repeat runs each
configuration once, in a freshly shuffled order, so that background load on a shared machine hits all
configurations alike. Report medians over repeats and compare ratios measured in one
process, never absolute times across runs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.monitoring

__all__ = [
    "COMPILE_EVENTS",
    "CompiledCase",
    "compile_case",
    "compile_timer",
    "environment_info",
    "format_table",
    "interleaved_times",
    "summarize",
]

#: `jax.monitoring` duration events that make up a compile (trace, lowering to MLIR, XLA backend compile).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@contextlib.contextmanager
def compile_timer() -> Iterator[dict[str, float]]:
    """Sums jax's compile duration events (`COMPILE_EVENTS`) while the block runs.

    For compiles that happen inside a call (`jaxirm.fit`, `jaxirm.sweep`), where `compile_case` cannot
    separate them.

    Yields:
      A dict that holds, once the block exits, ``trace_s``, ``lower_s``, ``backend_s`` and ``total_s``.
    """
    events = dict.fromkeys(COMPILE_EVENTS, 0.0)

    def listener(event: str, duration: float, **_: Any) -> None:
        if event in events:
            events[event] += duration

    out: dict[str, float] = {}
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield out
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
        trace, lower, backend = (events[e] for e in COMPILE_EVENTS)
        out.update(trace_s=trace, lower_s=lower, backend_s=backend, total_s=trace + lower + backend)


@dataclass(frozen=True)
class CompiledCase:
    """A compiled function bound to its arguments, ready to be timed.

    Attributes:
      fn: the compiled executable (`jax.stages.Compiled`).
      args: the positional arguments it is called with.
      compile_s: seconds spent tracing, lowering and compiling.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    compile_s: float

    def __call__(self) -> Any:
        """Runs the executable once and blocks until the result is ready.

        Returns:
          The (ready) result.
        """
        return jax.block_until_ready(self.fn(*self.args))


def compile_case(fn: Callable[..., Any], *args: Any, warmup: int = 1) -> CompiledCase:
    """Jits, lowers and compiles ``fn`` for ``args``, timing the compilation, then runs it ``warmup`` times.

    The arguments are passed to the executable (never closed over), so they are not folded into the
    program as constants.

    Args:
      fn: a function of ``args`` (not yet jitted).
      *args: the arrays to compile and run it with.
      warmup: untimed runs after compilation (first-call allocation, caches).

    Returns:
      The compiled case.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    case = CompiledCase(compiled, tuple(args), compile_s)
    for _ in range(warmup):
        case()
    return case


def interleaved_times(
    cases: Mapping[Hashable, Callable[[], Any]], repeats: int, seed: int | None = 0
) -> dict[Hashable, list[float]]:
    """Times every case ``repeats`` times, interleaved: each repeat runs every case once.

    The order within each repeat is a fresh random permutation (seeded), so no case is systematically first
    or systematically right after an expensive case (a fixed or merely rotated cyclic order always puts the
    same case after the most expensive one, which then pays for its cache and page-fault aftermath).

    Args:
      cases: key to a zero-argument callable that runs the case and blocks until its result is ready.
      repeats: number of timed runs per case (≥ 1).
      seed: seed of the per-repeat permutations; None keeps the mapping order in every repeat.

    Returns:
      Key to the list of ``repeats`` wall-clock durations in seconds, in repeat order.

    Raises:
      ValueError: ``repeats`` < 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    keys = list(cases)
    rng = None if seed is None else random.Random(seed)
    times: dict[Hashable, list[float]] = {key: [] for key in keys}
    for _ in range(repeats):
        order = list(keys)
        if rng is not None:
            rng.shuffle(order)
        for key in order:
            start = time.perf_counter()
            cases[key]()
            times[key].append(time.perf_counter() - start)
    return times


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median, min, max and interquartile range of a list of durations, in milliseconds.

    Args:
      seconds: durations in seconds (non-empty).

    Returns:
      ``{"median_ms", "min_ms", "max_ms", "iqr_ms"}``.
    """
    ms = sorted(1e3 * s for s in seconds)
    if len(ms) >= 2:
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    else:
        q1 = q3 = ms[0]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "iqr_ms": q3 - q1,
    }


def environment_info() -> dict[str, Any]:
    """What the timings were measured on.

    Returns:
      JAX and jaxlib versions, backend, device kind and count, CPU count, Python version and platform.
    """
    device = jax.devices()[0]
    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except (ImportError, AttributeError):  # pragma: no cover - jaxlib always ships with jax
        jaxlib_version = None
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable_cpus = os.cpu_count()
    return {
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib_version,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "usable_cpu_count": usable_cpus,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns: text left-aligned, numbers right-aligned.

    Args:
      header: column titles.
      rows: rows of cells (str, int or float; floats are printed with 3 decimals).

    Returns:
      The table, one line per row under a header and a rule, without a trailing newline.
    """

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[j], int | float) and not isinstance(row[j], bool) for row in rows)
        for j in range(len(header))
    ]
    widths = [max([len(h)] + [len(r[j]) for r in text]) for j, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(header)), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in text)
    return "\n".join(out)
