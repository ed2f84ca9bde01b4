"""Model selection: the names and meanings of every selection rule, and selection over configurations.

Two levels, as in DomainBed's protocol (Gulrajani & Lopez-Paz, 2021):

* over the *steps* of one run (`jaxirm.fit`, `jaxirm.sweep`): ``final``, ``train-val``, ``oracle``
  (`STEP_SELECTIONS`);
* over the *configurations* of a search (hyperparameter points × seeds, `select_config`): ``train-val``
  (training-environment validation), ``leave-one-env-out`` and ``oracle`` (test-set selection, an upper
  bound, labelled as such) (`CONFIG_SELECTIONS`).

A configuration is chosen by its validation score averaged over seeds; its test numbers are then reported
per seed (mean ± std over seeds), with the validation score kept beside them.
"""

from jaxirm.selection._configs import Choice, leave_one_env_out, select_config
from jaxirm.selection._steps import (
    CONFIG_SELECTIONS,
    DESCRIPTIONS,
    SELECTIONS,
    STEP_SELECTIONS,
    describe,
    evaluate,
    select_steps,
    summarize_envs,
)

__all__ = [
    "SELECTIONS",
    "STEP_SELECTIONS",
    "CONFIG_SELECTIONS",
    "DESCRIPTIONS",
    "describe",
    "evaluate",
    "select_steps",
    "summarize_envs",
    "Choice",
    "select_config",
    "leave_one_env_out",
]
