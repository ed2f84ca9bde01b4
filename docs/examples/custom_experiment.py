import tempfile
from pathlib import Path

from jaxirm import experiments, solvers
from jaxirm.datasets import irm_sem
from jaxirm.experiments import Experiment, Method
from jaxirm.losses import squared_error
from jaxirm.models import MLP


def load(seed):
    """(train, test) EnvData for one seed: the IRM paper's linear SEM, 3 training environments."""
    return irm_sem(seed, n_per_env=200, variant="FOU")


@experiments.register("sem-demo", overwrite=True)
def sem_demo():
    """Linear SEM regression (IRM paper, section 5.1): ERM vs IRM-TV-l1."""  # the table's description
    model = MLP()  # a linear model
    hparams = {"lr": 0.1, "l2": 0.0}
    return Experiment(
        name="sem-demo",
        load=load,
        val=0.1,  # the default: 10 % of each training environment held out for train-val selection
        methods=(
            Method("ERM", lambda: solvers.erm(model, loss=squared_error), hparams),
            Method(
                "IRM-TV-l1",
                lambda: solvers.irm(model, penalty="tv_l1", num_envs=3, loss=squared_error),
                {**hparams, "lam": 1.0, "anneal_steps": 25.0},
            ),
        ),
        num_steps=50,
        seeds=2,
        eval_every=10,
        metric="mse",  # lower is better; "worst" is the largest per-environment MSE
    )


out = tempfile.mkdtemp()
table = experiments.reproduce("sem-demo", seeds=2, steps=50, out=out, plot=False)
print(Path(out, "table.md").read_text())  # also written: results.jsonl, table.csv
