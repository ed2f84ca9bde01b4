"""jaxirm: invariant risk minimization as a total-variation model, in JAX.

The maths contract (see ``docs/theory.md``): per-environment risks R_e(w) of a model scaled by a dummy
classifier w, their derivatives g_e = ∂R_e/∂w at w = 1, and penalties of g under an environment measure μ:
IRMv1 = TV-ℓ2 (`tv_l2`), IRM-TV-ℓ1 (`tv_l1`), V-REx (`vrex`) and split-batch estimators for minibatches.
"""

from jaxirm import checkpoint, envs, losses, penalties, provenance, risks, search, selection
from jaxirm._types import Batch
from jaxirm.checkpoint import load
from jaxirm.envs import env_mask, env_mass, env_means, env_measure, one_hot, split_halves
from jaxirm.loops import FitResult, SweepResult, evaluate, fit, run, sweep
from jaxirm.penalties import tv_l1, tv_l1_split, tv_l2, tv_l2_split, vrex
from jaxirm.risks import env_risks, feature_scale_grads, scale_grads, split_scale_grads
from jaxirm.search import choice, log_uniform, search_space, uniform
from jaxirm.selection import select_config

__version__ = "0.1.0"

__all__ = [
    "envs",
    "losses",
    "penalties",
    "risks",
    "env_risks",
    "scale_grads",
    "feature_scale_grads",
    "split_scale_grads",
    "env_measure",
    "env_mass",
    "env_means",
    "env_mask",
    "one_hot",
    "split_halves",
    "tv_l2",
    "tv_l1",
    "vrex",
    "tv_l2_split",
    "tv_l1_split",
    "Batch",
    "fit",
    "run",
    "sweep",
    "evaluate",
    "FitResult",
    "SweepResult",
    "checkpoint",
    "provenance",
    "search",
    "selection",
    "load",
    "search_space",
    "log_uniform",
    "uniform",
    "choice",
    "select_config",
    "__version__",
]
