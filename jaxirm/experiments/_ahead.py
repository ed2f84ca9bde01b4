"""The compile-ahead thread of `reproduce`: method k + 1's sweep program is made while method k trains."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax

from jaxirm._sweep import precompile
from jaxirm.experiments._programs import ProgramStore, compile_serializable, program_key

if TYPE_CHECKING:
    from jaxirm.experiments._plan import Run

__all__ = ["CompileAhead", "ProgramSlot", "program_store"]


class ProgramSlot:
    """A method's compiled sweep program, made in the compile-ahead thread: ``ready`` is set once
    ``program`` holds it (None if it could not be made: the sweep then compiles, and reports any error,
    itself)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.program: Any = None
        self.loaded = False


def program_store(run: Run, keep_programs: bool):
    """The store of compiled programs (`_programs.ProgramStore`) beside JAX's persistent compilation cache
    (``<cache>/jaxirm-programs``), or None: no cache folder, or not one of jaxirm's own experiments."""
    cache = jax.config.jax_compilation_cache_dir
    if not keep_programs or not cache:
        return None
    return ProgramStore(Path(cache) / "jaxirm-programs")


class CompileAhead:
    """Makes the methods' sweep programs in a background thread, in the order they are submitted, so that
    method k + 1's is ready when method k has trained: loaded from ``store`` when it holds the program (no
    tracing), else traced and compiled (a load from JAX's persistent cache when it has it) and stored.

    Methods built by the same callable (`Method.build`: one solver, e.g. `paper_methods`' two norms of a
    game, whose norm is data) share one program, made once.

    The main thread submits a sweep after `prepare` has checked it and laid it out, while the devices are
    idle: the thread itself never touches a device (a check of a device array would queue behind the
    training program, and the program would be ready only after that training ends).
    """

    def __init__(self, run: Run, store: ProgramStore | None) -> None:
        self.run, self.store = run, store
        self.slots: dict[str, ProgramSlot] = {}
        self.made: dict[str, tuple[Any, bool]] = {}  # program key -> (program, loaded)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, name="jaxirm-compile-ahead", daemon=True).start()

    def submit(self, name: str, sweep) -> None:
        self.slots[name] = ProgramSlot()
        self.queue.put((name, sweep))

    def program(self, name: str) -> ProgramSlot:
        """The method's slot, once its program is ready (or could not be made)."""
        self.slots[name].ready.wait()
        return self.slots[name]

    def _identity(self, name: str) -> dict:
        """What names a method's program without tracing it: the experiment and the methods built by the same
        callable (`Method.build`: the same solver, so one program and one key)."""
        methods = self.run.exp.methods
        build = next(m.build for m in methods if m.name == name)
        sharing = "+".join(m.name for m in methods if m.build is build)
        return {"experiment": self.run.exp.name, "method": sharing}

    def _work(self) -> None:
        store = self.store
        while True:
            name, sweep = self.queue.get()
            slot = self.slots[name]
            try:
                key = program_key(self._identity(name), sweep.args, sweep.static)
                if key in self.made:
                    slot.program, slot.loaded = self.made[key]
                    continue
                if store is not None:
                    slot.program = store.load(key)
                    slot.loaded = slot.program is not None
                if slot.program is None and store is None:
                    slot.program = precompile(sweep)
                elif slot.program is None:
                    slot.program, serializable = compile_serializable(sweep)
                    if serializable:  # else the next run traces it again and loads it from JAX's cache
                        store.save(key, slot.program)
                self.made[key] = (slot.program, slot.loaded)
            except Exception:  # the sweep itself reports it, in the main thread
                slot.program = None
            finally:
                slot.ready.set()
