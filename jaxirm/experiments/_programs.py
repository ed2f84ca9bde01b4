"""Compiled sweep programs kept on disk between runs of `reproduce`, so that a rerun skips tracing too.

JAX's persistent compilation cache finds a compiled program by its lowered module, so every rerun still
traces and lowers each method's sweep first (0.3–1.2 s of Python per method, about a third of the warm main
job). This store keys a program on what determines it, computed without tracing:

- the source of every jaxirm module (a digest of the package's ``.py`` files);
- the versions of Python, jax, jaxlib, flax, optax, chex and numpy, JAX's configuration, ``XLA_FLAGS``;
- the backend and its devices (platform, kind, ids) and, on CPU, the host processor's model and flags (a CPU
  program is machine code for this processor);
- the method: a built-in experiment's name and the method's name (their solvers are built by jaxirm code,
  covered by the digest) — `reproduce` uses the store only for experiments registered by jaxirm itself;
- the sweep's static configuration and the shapes, dtypes, shardings and tree structure of its arguments
  (the hyperparameter values, seeds and data are arguments, not part of the program).

A program whose key matches is loaded (`jax.experimental.serialize_executable`); any other compiles as before
(served by JAX's cache when it can) and is stored. A file that cannot be read is ignored and rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import platform
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from jaxirm._sweep import _STATIC, Prepared, _program
from jaxirm.provenance import _version

__all__ = ["ProgramStore", "compile_serializable", "program_key"]

_FORMAT = 1
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "numpy")


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 over the path and bytes of every ``.py`` file of the jaxirm package."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _cpu() -> str:
    """The host processor's model and feature flags (Linux), else what `platform` knows."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    keep = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    lines = {line.split(":", 1)[0].strip(): line for line in text.splitlines() if ":" in line}
    return "\n".join(lines[k] for k in keep if k in lines)


@functools.lru_cache(maxsize=1)
def _environment_digest() -> str:
    """sha256 of the software and hardware a compiled program depends on besides jaxirm's own code."""
    versions = {name: _version(name) for name in _PACKAGES}
    devices = [(d.platform, d.device_kind, d.id, d.process_index) for d in jax.devices()]
    config = sorted((k, repr(v)) for k, v in jax.config.values.items())
    env = {k: os.environ.get(k) for k in ("XLA_FLAGS", "LIBTPU_INIT_ARGS")}
    blob = json.dumps(
        [sys.version, versions, jax.default_backend(), devices, config, env, _cpu()], sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _describe(leaf: Any) -> list:
    sharding = getattr(leaf, "sharding", None)
    devices = sorted(d.id for d in sharding.device_set) if sharding is not None else None
    return [
        list(getattr(leaf, "shape", ())),
        str(getattr(leaf, "dtype", type(leaf).__name__)),
        bool(getattr(leaf, "weak_type", False)),
        repr(sharding),
        devices,
    ]


def program_key(identity: Mapping[str, Any], args: tuple, static: Mapping[str, Any]) -> str:
    """The store's key of a sweep program (see the module docstring).

    Args:
      identity: what names the solver without tracing it, e.g. ``{"experiment": "simulation", "method":
        "ZIN"}``; only for solvers built by jaxirm code.
      args: the program's arguments (`jaxirm._sweep.Prepared.args`).
      static: its static configuration (`jaxirm._sweep.Prepared.static`); the solver is named by
        ``identity``, the mesh by its axes and devices.

    Returns:
      A hex sha256 digest.
    """
    leaves, treedef = jax.tree_util.tree_flatten(args)
    config = {k: repr(v) for k, v in static.items() if k not in ("solver", "mesh")}
    mesh = static.get("mesh")
    if mesh is not None:
        config["mesh"] = [list(mesh.axis_names), list(mesh.devices.shape), [d.id for d in mesh.devices.flat]]
    blob = json.dumps(
        {
            "format": _FORMAT,
            "code": _code_digest(),
            "environment": _environment_digest(),
            "identity": dict(identity),
            "static": config,
            "args": [_describe(leaf) for leaf in leaves],
            "tree": str(treedef),
        },
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ProgramStore:
    """Compiled programs on disk, one file per key (``<key>.program``), written atomically.

    Every change of jaxirm's code makes new keys, so the store keeps only the ``max_files`` most recently
    used programs (a load marks a file used; a save removes the least recently used beyond the limit).

    Args:
      directory: where the files live (created on the first `save`).
      max_files: how many programs to keep (the main job has 13, of 1–3 MB each).
    """

    def __init__(self, directory: str | os.PathLike, max_files: int = 64) -> None:
        self.directory = Path(directory)
        self.max_files = max_files

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.program"

    def load(self, key: str) -> Any | None:
        """The compiled program stored under ``key``, or None (absent, unreadable or from another format)."""
        from jax.experimental.serialize_executable import deserialize_and_load

        try:
            with open(self._path(key), "rb") as f:
                stored = pickle.load(f)
            if stored.get("format") != _FORMAT or stored.get("key") != key:
                return None
            by_id = {d.id: d for d in jax.devices()}
            devices = [by_id[i] for i in stored["devices"]]
            program = deserialize_and_load(
                stored["payload"], stored["in_tree"], stored["out_tree"], execution_devices=devices
            )
        except Exception:  # absent, torn, or written by an incompatible jaxlib: compile instead
            return None
        try:
            os.utime(self._path(key))  # used now: kept by `_prune`
        except OSError:
            pass
        return program

    def save(self, key: str, compiled: Any) -> bool:
        """Stores a compiled program (a `jax.stages.Compiled`) under ``key``; False if it could not be."""
        from jax.experimental.serialize_executable import serialize

        try:
            payload, in_tree, out_tree = serialize(compiled)
            devices = [d.id for d in compiled.runtime_executable().local_devices()]
            blob = pickle.dumps(
                {
                    "format": _FORMAT,
                    "key": key,
                    "payload": payload,
                    "in_tree": in_tree,
                    "out_tree": out_tree,
                    "devices": devices,  # the devices it runs on, in its order
                }
            )
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        except Exception:  # a program that cannot be serialized, or a folder that cannot be written
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, self._path(key))
        except OSError:  # e.g. a full disk: no store, no torn file
            Path(tmp).unlink(missing_ok=True)
            return False
        self._prune()
        return True

    def _prune(self) -> None:
        """Removes the least recently used programs beyond ``max_files``."""
        try:
            files = sorted(self.directory.glob("*.program"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for path in files[self.max_files :]:
                path.unlink(missing_ok=True)
        except OSError:  # another process pruning at the same time
            pass


_persistent_hits = threading.local()


def _count_persistent_hits(event: str, **_: object) -> None:
    # JAX records the event in the thread that compiles
    if event == "/jax/compilation_cache/cache_hits":
        _persistent_hits.count = getattr(_persistent_hits, "count", 0) + 1


jax.monitoring.register_event_listener(_count_persistent_hits)


def compile_serializable(prepared: Prepared) -> tuple[jax.stages.Compiled, bool]:
    """Compiles the program of a `prepare`d sweep so that it can be kept on disk, if JAX lets it.

    An executable that JAX loaded from its persistent compilation cache serializes
    (`jax.experimental.serialize_executable`) into a payload that fails when it runs (jaxlib 0.10.2, CPU:
    "Function … not found"). The program is therefore traced and lowered anew (a new function object, so
    JAX's in-memory caches cannot answer with such an executable), and reported not serializable when JAX's
    persistent cache answered.

    Returns:
      ``(program, serializable)``.
    """
    once = jax.jit(functools.partial(_program), static_argnames=_STATIC)
    before = getattr(_persistent_hits, "count", 0)
    program = once.lower(*prepared.args, **prepared.static).compile()
    return program, getattr(_persistent_hits, "count", 0) == before
