"""The ``jaxirm`` command line (typer; install the ``cli`` extra): ``reproduce``, ``search``, ``list``,
``demo``."""

import contextlib
import sys
from collections.abc import Sequence
from typing import Annotated

__all__ = ["main"]

_MISSING = (
    'the jaxirm command line needs typer and matplotlib: from a clone of jaxirm, pip install -e ".[cli]"'
)


def _import_modules(modules: Sequence[str] | None) -> None:
    """Imports the user's modules (``--import``), whose import registers their experiments."""
    import importlib
    import os

    import typer

    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        # As `python -m` does: a module in the current folder can be imported (a console script's sys.path
        # starts with the script's own folder, not the current one).
        sys.path.insert(0, os.getcwd())
    for module in modules or ():
        if not module.strip() or module.startswith("."):  # importlib's ValueError / TypeError otherwise
            raise typer.BadParameter(
                f"{module!r} is not an absolute module name (e.g. my_package.experiments)",
                param_hint="--import",
            )
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise typer.BadParameter(f"cannot import {module!r}: {err}", param_hint="--import") from err


def _experiment(name: str, modules: Sequence[str] | None):
    """The experiment registered as ``name`` once ``modules`` (``--import``) are imported, else a usage
    error."""
    import typer

    from jaxirm import experiments

    _import_modules(modules)
    try:
        return experiments.get(name)
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="NAME") from err


def _echo_err(line: str) -> None:
    import typer

    typer.echo(line, err=True)


def _call(command: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; its expected failures become one line on stderr and exit status 1 (an unknown
    ``--method``: a usage error), with no traceback."""
    import typer

    from jaxirm.experiments._store import OutLocked

    try:
        return fn(*args, **kwargs)
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="--method") from err
    # Data not installed or not found, another run holding --out, --steps too few for EIIL's phases, ...
    except (ImportError, FileNotFoundError, OutLocked, ValueError) as err:
        typer.echo(f"jaxirm {command}: {err}", err=True)
        raise typer.Exit(1) from err


@contextlib.contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar over the runs (methods × seeds) of ``reproduce``, on stderr.

    Yields the ``on_progress(method, done, total)`` callback of `jaxirm.experiments.reproduce`, or None when
    disabled. A method's seeds run as one compiled sweep, so the bar advances once per method; the spinner and
    the elapsed time keep moving meanwhile. Lines logged to stderr print above the bar.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("starting", total=None)

        def on_progress(method: str, done: int, total: int) -> None:
            bar.update(task, description=method, completed=done, total=total)

        yield on_progress


def _parse_set(items: Sequence[str] | None) -> dict[str, float]:
    """``["lam=100", "lr=0.01"]`` → ``{"lam": 100.0, "lr": 0.01}`` (``--set``)."""
    import typer

    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not NAME=NUMBER (e.g. lam=100)", param_hint="--set"
            ) from None
    return out


def _cache_dir() -> str:
    """Where the persistent compilation cache lives: ``$JAXIRM_CACHE_DIR``, else the user's cache folder
    (``$XDG_CACHE_HOME``, else ``~/.cache``) ``/jaxirm/xla``."""
    import os

    if os.environ.get("JAXIRM_CACHE_DIR"):
        return os.environ["JAXIRM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxirm", "xla")


def _configure_jax(compile_cache: bool) -> None:
    """Before anything is computed: JAX's persistent compilation cache (a rerun loads the compiled programs
    instead of compiling them again) and, on CPU, one JAX device per core the process may use, so that a
    sweep's runs are sharded over every core. Either is left alone when the user already set it (a cache
    folder, ``JAX_NUM_CPU_DEVICES`` or ``XLA_FLAGS=--xla_force_host_platform_device_count``), or when JAX has
    already started in this process (the device count is fixed then)."""
    import os

    import jax

    if compile_cache and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", _cache_dir())
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # small programs too
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "") or os.environ.get(
        "JAX_NUM_CPU_DEVICES"
    ):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # JAX is already running in this process: its devices stay as they are
        pass


def _shared(seeds, steps, method, reuse_stale, data_dir) -> dict:
    """The arguments ``reproduce`` and ``search`` share, from the options of the same names."""
    return dict(
        seeds=seeds,
        steps=steps,
        methods=method or None,
        reuse_stale=reuse_stale,
        data_dir=data_dir,
        log=_echo_err,
    )


def _app():
    import typer

    app = typer.Typer(
        name="jaxirm",
        help="Invariant risk minimization as a total-variation model, in JAX.",
        no_args_is_help=True,
        add_completion=False,
    )

    # Options several commands share.
    Steps = Annotated[int | None, typer.Option(min=1, help="steps per run (default: the experiment's)")]
    Import = Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            help="import this Python module first, e.g. one that registers your own experiment (repeatable)",
        ),
    ]
    DataDir = Annotated[
        str | None,
        typer.Option(help="folder of user-supplied data files (default: $JAXIRM_DATA, else ./data)"),
    ]
    CompileCache = Annotated[
        bool,
        typer.Option(
            envvar="JAXIRM_COMPILE_CACHE",
            help="keep compiled programs in JAX's persistent cache ($JAXIRM_CACHE_DIR, else "
            "~/.cache/jaxirm/xla), so a rerun does not compile again; for jaxirm's own experiments also each "
            "method's compiled sweep (<cache>/jaxirm-programs), so it does not trace them either",
        ),
    ]

    def _version(value: bool) -> None:
        if value:
            from jaxirm import __version__

            typer.echo(f"jaxirm {__version__}")
            raise typer.Exit()

    @app.callback()
    def _options(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
        ] = False,
    ) -> None:
        pass

    @app.command()
    def reproduce(
        name: Annotated[str, typer.Argument(help="registered experiment (see `jaxirm list`)")],
        seeds: Annotated[
            int | None, typer.Option(min=1, help="number of seeds (default: the experiment's)")
        ] = None,
        steps: Steps = None,
        out: Annotated[str | None, typer.Option(help="output directory (default: results/NAME)")] = None,
        method: Annotated[list[str] | None, typer.Option(help="run only this method (repeatable)")] = None,
        plot: Annotated[bool, typer.Option(help="write plot.png")] = True,
        import_: Import = None,
        data_dir: DataDir = None,
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="override a hyperparameter for this run, e.g. --set lam=100 (repeatable; the tables "
                "then go to OUT/partial/ and give no paper verdict)",
            ),
        ] = None,
        reuse_stale: Annotated[
            bool,
            typer.Option(help="reuse stored rows whose provenance (code, libraries, device, data) differs"),
        ] = False,
        checkpoints: Annotated[
            bool, typer.Option(help="save final and selected states under OUT/checkpoints (orbax)")
        ] = False,
        compile_cache: CompileCache = True,
    ) -> None:
        """Run every method × seed of an experiment; write results.jsonl, table.csv/.md and plot.png."""
        import os
        import time

        _configure_jax(compile_cache)

        from jaxirm import experiments
        from jaxirm._progress import progress_enabled
        from jaxirm.experiments._store import check_out_dir

        exp = _experiment(name, import_)
        overrides = _parse_set(set_)
        out_dir = out or os.path.join("results", name)
        try:  # before anything is computed (reproduce checks it again)
            check_out_dir(out_dir)
        except ValueError as err:
            typer.echo(f"jaxirm reproduce {name}: --{err}", err=True)
            raise typer.Exit(1) from err
        start = time.perf_counter()
        with _progress_bar(progress_enabled(None)) as on_progress:
            table = _call(
                f"reproduce {name}",
                experiments.reproduce,
                name,  # by name: jaxirm's own experiments keep their compiled programs (reproduce)
                out=out_dir,
                plot=plot,
                on_progress=on_progress,
                overrides=overrides,
                checkpoints=checkpoints,
                **_shared(seeds, steps, method, reuse_stale, data_dir),
            )
        from jaxirm.selection import STEP_SELECTIONS

        for selection in STEP_SELECTIONS:
            if any(e["selection"] == selection for e in table):
                typer.echo(f"\n{exp.name} — selection: {selection}\n")
                typer.echo(experiments.format_table(exp, table, selection))
        if exp.ceiling is not None:
            typer.echo(f"\ninvariant ceiling: {exp.ceiling:.4f}")
        typer.echo("\n" + experiments.verdict_line(exp, table))
        tables = experiments.table_dir(
            exp, out_dir, seeds=seeds, steps=steps, methods=method or None, overrides=overrides
        )
        files = f"table.csv, table.md{', plot.png' if plot else ''}"
        if str(tables) == str(out_dir):
            where = f"results in {out_dir}/ (results.jsonl, {files})"
        else:  # a partial run never overwrites the registered protocol's tables
            where = f"results in {out_dir}/results.jsonl; this partial run's tables in {tables}/ ({files})"
        typer.echo(f"{where}; {time.perf_counter() - start:.1f} s")

    @app.command("search")
    def search_cmd(
        name: Annotated[str, typer.Argument(help="registered experiment with a search space")],
        trials: Annotated[int, typer.Option(min=1, help="configurations per method")] = 8,
        method: Annotated[list[str] | None, typer.Option(help="search only this method (repeatable)")] = None,
        seeds: Annotated[
            int | None, typer.Option(min=1, help="seeds per configuration (default: the experiment's)")
        ] = None,
        steps: Steps = None,
        out: Annotated[
            str | None, typer.Option(help="output directory (default: results/NAME/search)")
        ] = None,
        seed: Annotated[int, typer.Option(min=0, help="seed of the random search")] = 0,
        reuse_stale: Annotated[
            bool, typer.Option(help="reuse stored searches whose provenance differs")
        ] = False,
        import_: Import = None,
        data_dir: DataDir = None,
        compile_cache: CompileCache = True,
    ) -> None:
        """Random search over an experiment's registered space; write search.jsonl and search.md with the
        configuration each selection (train-val, leave-one-env-out, test-set oracle) picks per method."""
        import os

        _configure_jax(compile_cache)

        from jaxirm import experiments

        exp = _experiment(name, import_)
        out_dir = out or os.path.join("results", name, "search")
        shared = _shared(seeds, steps, method, reuse_stale, data_dir)
        _call(f"search {name}", experiments.search, exp, trials=trials, out=out_dir, seed=seed, **shared)
        typer.echo(open(os.path.join(out_dir, "search.md")).read())
        typer.echo(f"results in {out_dir}/ (search.jsonl, search.md)")

    @app.command("list")
    def list_experiments(
        import_: Import = None,
    ) -> None:
        """List the registered experiments."""
        from jaxirm import experiments

        _import_modules(import_)
        for name in experiments.names():
            exp = experiments.get(name)
            typer.echo(f"{name}: {exp.description} ({len(exp.methods)} methods × {exp.seeds} seeds)")

    @app.command()
    def demo(
        seed: Annotated[int, typer.Option(help="seed of the simulated data")] = 0,
        steps: Annotated[int, typer.Option(min=1, help="Adam steps of each fit")] = 2000,
    ) -> None:
        """Print the IRM and IRM-TV-l1 penalties of two models on the simulation."""
        from jaxirm.demo import run_demo

        run_demo(seed=seed, steps=steps)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jaxirm`` / ``python -m jaxirm``.

    Args:
      argv: command-line arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
      The process exit status (2 for usage errors or a missing ``cli`` extra).
    """
    try:
        app = _app()
    except ImportError:
        print(_MISSING, file=sys.stderr)
        return 2
    try:
        app(args=list(sys.argv[1:] if argv is None else argv), prog_name="jaxirm", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0
