"""Durable results files: an advisory lock per output folder, atomic row-set appends, complete row sets.

A *row set* is every row one (method, seed) run writes (one per selection), tagged with one ``run_id``. It
counts as finished only when all its selections are present, so a torn tail (a run killed mid-write) makes
that run recompute instead of marking it done.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = ["LOCK", "OutLocked", "lock", "append_rows", "row_set_key", "complete_sets", "partial_tag"]

LOCK = ".lock"


class OutLocked(RuntimeError):
    """Another process holds the output folder's lock."""


@contextlib.contextmanager
def lock(out: str | os.PathLike) -> Iterator[Path]:
    """Holds an exclusive advisory lock on ``out/.lock`` (`fcntl.flock`) for the duration of the block.

    Raises:
      OutLocked: (a RuntimeError) another process holds it (``another jaxirm run holds OUT``); raised at
        once, no waiting.
    """
    path = Path(out) / LOCK
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise OutLocked(
                f"another jaxirm run holds {out}{who}; wait for it to finish or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def drop_torn_tail(path: Path) -> int:
    """Removes an unfinished last line (a run killed mid-write); returns the number of bytes dropped."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(keep)
            os.fsync(fh.fileno())
        return len(data) - keep
    return 0


def append_rows(path: Path, rows: Sequence[dict]) -> None:
    """Appends ``rows`` with one ``write`` of their joined bytes on an ``O_APPEND`` descriptor, then fsync.

    The rows go in together or, if the process dies mid-write, leave a torn tail that `drop_torn_tail`
    removes and whose row set `complete_sets` does not count.
    """
    if not rows:
        return
    drop_torn_tail(path)
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_rows(path: Path, rows: Iterable[dict]) -> None:
    """Replaces the file with ``rows`` (write to a temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def row_set_key(row: dict) -> tuple:
    """The row set a row belongs to: its ``run_id``, or for rows of older versions the run's settings."""
    if row.get("run_id"):
        return ("run", row["run_id"])
    return (
        "legacy",
        row.get("experiment"),
        row.get("method"),
        row.get("seed"),
        row.get("steps"),
        json.dumps(row.get("hparams"), sort_keys=True),
    )


def complete_sets(rows: Sequence[dict], wanted: Iterable[str]) -> tuple[dict, list]:
    """Groups rows into row sets and keeps, per (method, seed), the *last* set holding every ``wanted``
    selection.

    Returns:
      ``({(method, seed): [rows of its last complete set]}, [incomplete sets' rows])``.
    """
    wanted = set(wanted)
    sets: dict[tuple, list] = {}
    for row in rows:
        sets.setdefault(row_set_key(row), []).append(row)
    done: dict[tuple, list] = {}
    incomplete = []
    for members in sets.values():
        selections = {r["selection"] for r in members}
        if wanted <= selections:
            done[(members[0]["method"], members[0]["seed"])] = members
        else:
            incomplete.append(members)
    return done, incomplete


def partial_tag(
    methods: Sequence[str] | None,
    all_methods: Sequence[str],
    seeds: int,
    full_seeds: int,
    steps: int,
    full_steps: int,
    overrides: dict | None = None,
) -> str | None:
    """The folder name of a partial run's tables (None for the full, registered run).

    A run is partial when it covers a subset of the methods, other seeds or steps than registered, or
    overrides a hyperparameter; its tables go to ``out/partial/<tag>/`` so they never replace the full ones.
    """
    parts = []
    if methods is not None and set(methods) != set(all_methods):
        parts.append("+".join(methods))
    if steps != full_steps:
        parts.append(f"steps{steps}")
    if seeds != full_seeds:
        parts.append(f"seeds{seeds}")
    for name, value in sorted((overrides or {}).items()):
        parts.append(f"{name}={value:g}")
    if not parts:
        return None
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))[:120]
