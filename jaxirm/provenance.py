"""Provenance of a result: which code, libraries, device, data and method configuration produced it.

`reproduce` stores `provenance` under every row's ``"provenance"`` key and reuses a stored row only when
`stale_reasons` finds nothing that differs (the versions, commit, dirty state, backend, device kind, data
fingerprint and method configuration; not the timestamps or device count).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["environment", "fingerprint", "provenance", "stale_reasons", "COMPARED"]

COMPARED = (
    "jaxirm",
    "git_commit",
    "git_dirty",
    "git_diff",
    "jax",
    "jaxlib",
    "optax",
    "flax",
    "backend",
    "device_kind",
    "data",
    "method",
)
"""The provenance keys that must match for a stored row to be reused."""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(package_dir: Path) -> dict:
    """Commit, dirty flag and a hash of the uncommitted changes of the package, when run from a checkout."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(package_dir), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if not commit:
        return {"git_commit": None, "git_dirty": None, "git_diff": None}
    status = run("status", "--porcelain", "--", ".") or ""
    digest = hashlib.sha256()
    if status.strip():
        # The uncommitted changes of the package itself (tracked diff + untracked files' contents), so two
        # runs from the same dirty tree share their rows and an edit in between makes them stale.
        digest.update((run("diff", "HEAD", "--", ".") or "").encode())
        root = run("rev-parse", "--show-toplevel")
        for line in status.splitlines():
            if line.startswith("??") and root:
                path = Path(root.strip()) / line[3:].strip()
                files = sorted(path.rglob("*")) if path.is_dir() else [path]
                for f in files:
                    if f.is_file() and f.suffix != ".pyc":
                        digest.update(str(f).encode() + f.read_bytes())
    return {
        "git_commit": commit.strip(),
        "git_dirty": bool(status.strip()),
        "git_diff": digest.hexdigest()[:16] if status.strip() else None,
    }


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    import jax

    import jaxirm

    devices = jax.devices()
    return {
        "jaxirm": jaxirm.__version__,
        **_git(Path(jaxirm.__file__).resolve().parent),
        **{name: _version(name) for name in ("jax", "jaxlib", "optax", "flax")},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": len(devices),
    }


def environment(refresh: bool = False) -> dict:
    """The code, library and device part of the provenance (cached per process; ``refresh`` recomputes).

    Returns:
      ``{"jaxirm", "git_commit", "git_dirty", "git_diff", "jax", "jaxlib", "optax", "flax", "backend",
      "device_kind", "device_count"}``; the git keys are None outside a git checkout (an installed wheel).
    """
    if refresh:
        _static.cache_clear()
    return dict(_static())


def fingerprint(*arrays: Any) -> str:
    """sha256 (first 16 hex digits) of arrays (or pytrees / tuples of arrays, None allowed): shapes, dtypes
    and bytes, so the same data gives the same fingerprint on every machine."""
    import jax

    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(arrays, is_leaf=lambda a: a is None):
        if leaf is None:
            digest.update(b"none")
            continue
        arr = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def provenance(data: str | None = None, method: Mapping[str, Any] | None = None) -> dict:
    """The provenance of one result row.

    Args:
      data: the data's `fingerprint`.
      method: the full method configuration (name, solver name, hyperparameters with the solver's defaults
        filled in, steps, evaluation schedule).

    Returns:
      `environment` plus ``data`` and ``method`` (JSON-compatible).
    """
    out = environment()
    out["data"] = data
    out["method"] = json.loads(json.dumps(dict(method or {}), default=float))
    return out


def stale_reasons(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Why a stored row's provenance does not match the current one (empty: it may be reused).

    Returns:
      Short phrases, e.g. ``["no provenance recorded"]`` or ``["git_commit 1a2b3c4 -> 5d6e7f8", "data"]``.
    """
    if not isinstance(stored, Mapping):
        return ["no provenance recorded"]
    reasons = []
    for key in COMPARED:
        old, new = stored.get(key), current.get(key)
        if old != new:
            if key in ("data", "method", "git_diff"):
                reasons.append(f"{key} changed")
            else:
                cut = 8 if key == "git_commit" else None
                reasons.append(f"{key} {str(old)[:cut]} -> {str(new)[:cut]}")
    return reasons


def describe(rows: list[Mapping[str, Any]]) -> list[str]:
    """Lines for a table: the distinct provenances of ``rows`` (code, libraries, device)."""
    seen: dict[str, int] = {}
    for row in rows:
        p = row.get("provenance")
        if not isinstance(p, Mapping):
            key = "no provenance recorded (rows from an older jaxirm)"
        else:
            commit = p.get("git_commit")
            git = f", commit {commit[:8]}{' (dirty)' if p.get('git_dirty') else ''}" if commit else ""
            key = (
                f"jaxirm {p.get('jaxirm')}{git}; jax {p.get('jax')}, jaxlib {p.get('jaxlib')}, "
                f"optax {p.get('optax')}, flax {p.get('flax')}; backend {p.get('backend')} "
                f"({p.get('device_kind')})"
            )
        seen[key] = seen.get(key, 0) + 1
    return [f"{key} — {n} rows" if len(seen) > 1 else key for key, n in seen.items()]
