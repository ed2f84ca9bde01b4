"""Progress over methods × seeds in `jaxirm.experiments.reproduce` and the command line's progress bar."""

from jaxirm import experiments, solvers
from jaxirm.cli import _progress_bar
from jaxirm.datasets import irm_sem
from jaxirm.experiments import Experiment, Method
from jaxirm.losses import squared_error
from jaxirm.models import MLP


def _load(seed):
    train, test = irm_sem(seed, n_per_env=20)
    return train, None, test


TINY = Experiment(
    name="progress-demo",
    description="two methods, two seeds, two steps",
    load=_load,
    methods=(
        Method("ERM", lambda: solvers.erm(MLP(), loss=squared_error), {}),
        Method("IRM-TV-l1", lambda: solvers.irm(MLP(), penalty="tv_l1", num_envs=3, loss=squared_error), {}),
    ),
    num_steps=2,
    seeds=2,
    eval_every=1,
    metric="mse",
    selections=("final",),
)


def test_reproduce_reports_runs_done_over_methods_and_seeds(tmp_path):
    calls = []
    kwargs = dict(out=tmp_path, plot=False, progress=False)
    experiments.reproduce(TINY, on_progress=lambda *a: calls.append(a), **kwargs)
    assert calls == [("ERM", 0, 4), ("ERM", 2, 4), ("IRM-TV-l1", 2, 4), ("IRM-TV-l1", 4, 4)]
    calls.clear()  # a rerun finds every run in results.jsonl: each method starts complete
    experiments.reproduce(TINY, on_progress=lambda *a: calls.append(a), **kwargs)
    assert calls == [("ERM", 2, 4), ("IRM-TV-l1", 4, 4)]


def test_progress_bar_is_off_unless_enabled(capsys):
    with _progress_bar(False) as on_progress:
        assert on_progress is None
    with _progress_bar(True) as on_progress:
        on_progress("ERM", 0, 20)
        on_progress("ERM", 10, 20)
    assert "10/20" in capsys.readouterr().err
