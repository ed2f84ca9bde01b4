"""Experiments: a registry mapping a name to its data, methods, hyperparameters, seeds and metric.

``jaxirm reproduce NAME`` (or `reproduce`) runs every method × seed of a registered experiment. Register your
own with `register`:

    @jaxirm.experiments.register("my-experiment")
    def my_experiment() -> Experiment:
        return Experiment(name="my-experiment", load=..., methods=(...), num_steps=...)

``load(seed)`` returns ``(train, test)``; the registry holds out the validation set (``Experiment.val``,
default 10 % of every training environment), and an empty description becomes the first line of the
factory's docstring.
"""

from jaxirm.experiments import ablations as _ablations  # noqa: F401  ("ood-tv-ablation", "eiil-control")
from jaxirm.experiments import adult as _adult  # noqa: F401  (registers "adult")
from jaxirm.experiments import cmnist as _cmnist  # noqa: F401  (registers "cmnist")
from jaxirm.experiments import house as _house  # noqa: F401  (registers "house")
from jaxirm.experiments import robustness as _robustness  # noqa: F401  (registers "corrupted-env")
from jaxirm.experiments import sem as _sem  # noqa: F401  (registers "sem")
from jaxirm.experiments import simulation as _simulation  # noqa: F401  (registers "simulation")
from jaxirm.experiments import user_data as _user_data  # noqa: F401  (registers "house-kc", "celeba")
from jaxirm.experiments._plan import Run, table_dir
from jaxirm.experiments._registry import Experiment, Method, PaperEntry, get, names, register
from jaxirm.experiments._run import reproduce
from jaxirm.experiments._search import read_search, search
from jaxirm.experiments._store import read_results
from jaxirm.experiments._tables import format_table, summarize, trajectories, verdict_counts, verdict_line

__all__ = [
    "Experiment",
    "Method",
    "PaperEntry",
    "Run",
    "register",
    "get",
    "names",
    "reproduce",
    "read_results",
    "summarize",
    "format_table",
    "trajectories",
    "verdict_counts",
    "verdict_line",
    "table_dir",
    "search",
    "read_search",
]
