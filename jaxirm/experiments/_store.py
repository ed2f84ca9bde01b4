"""Durable results files: the output folder and its ``results.jsonl``, an advisory lock per folder, atomic
row-set appends, complete row sets.

A *row set* is every row one (method, seed) run writes (one per selection), tagged with one ``run_id``. It
counts as finished only when all its selections are present, so a torn tail (a run killed mid-write) makes
that run recompute instead of marking it done.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK",
    "RESULTS",
    "OutLocked",
    "lock",
    "append_rows",
    "row_set_key",
    "complete_sets",
    "partial_tag",
    "read_rows",
    "read_results",
    "check_out_dir",
]

LOCK = ".lock"
RESULTS = "results.jsonl"

#: The fields every results row must hold, with their JSON types (numbers may be int or float).
_ROW_FIELDS = {
    "method": (str, "string"),
    "seed": (int, "integer"),
    "selection": (str, "string"),
    "test_mean": ((int, float), "number"),
    "test_worst": ((int, float), "number"),
    "diverged": (bool, "boolean"),
}


def _check_row(row: Any, where: str) -> dict:
    """A results row as `reproduce` writes it, else a `ValueError` naming ``where`` (file:line)."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a results row must be a JSON object, got a JSON {type(row).__name__}")
    for field, (kind, label) in _ROW_FIELDS.items():
        if field not in row:
            raise ValueError(f"{where}: the results row lacks the field {field!r}")
        value = row[field]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ValueError(f"{where}: field {field!r} must be a JSON {label}, got {value!r}")
    if row["seed"] < 0:
        raise ValueError(f"{where}: field 'seed' must be >= 0, got {row['seed']}")
    return row


def read_rows(path: Path, check: Callable[[Any, str], dict] | None = None) -> list[dict]:
    """The JSON rows of a ``.jsonl`` file (none if it does not exist); an unfinished last line (a run killed
    mid-write) is ignored.

    Args:
      path: the file.
      check: ``check(row, "file:line")`` returns the row or raises (default: any JSON value is a row).

    Raises:
      ValueError: a line other than the last is not JSON (the message names the file and the line number).
    """
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # the torn last line of a run killed mid-write
                continue
            raise ValueError(f"{where}: not a JSON row ({err.msg})") from None
        rows.append(row if check is None else check(row, where))
    return rows


def read_results(out: str | os.PathLike) -> list[dict]:
    """The rows of ``out/results.jsonl`` (an unfinished last line from a killed run is ignored).

    Raises:
      ValueError: a row (other than an unfinished last line) that is not JSON, not a JSON object, lacks
        one of the fields ``method``, ``seed``, ``selection``, ``test_mean``, ``test_worst``, ``diverged``,
        or holds a value of the wrong type there; the message names the file and the line number.
    """
    return read_rows(Path(out) / RESULTS, _check_row)


def check_out_dir(out: str | os.PathLike) -> Path:
    """Creates the output directory ``out`` and checks that results can be written there.

    Called before anything is loaded or compiled, so a bad ``out`` fails at once instead of after the first
    method has trained.

    Raises:
      ValueError: ``out`` is a file, cannot be created, is not writable, or its ``results.jsonl`` is not a
        writable file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # the only portable writability test (root ignores modes)
            pass
    except OSError as err:
        raise ValueError(f"out {str(out)!r} is not a writable directory ({err.strerror or err})") from None
    path = out / RESULTS
    if path.exists() and not (path.is_file() and os.access(path, os.W_OK)):
        raise ValueError(f"out {str(out)!r}: {RESULTS} exists but is not a writable file")
    return out


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
