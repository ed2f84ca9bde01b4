"""Datasets: embedded synthetic generators (numpy only, seeded) and real-data loaders.

Every dataset comes as ``(train, test)`` `EnvData` (examples, environment labels, auxiliary variable z).
The real-data loaders read files that optional packages bundle or that the user gives; each says what to
install when its files are missing.
"""

from jaxirm.datasets.synthetic import (
    EnvData,
    SEMTruth,
    invariant_ceiling,
    irm_sem,
    irm_sem_truth,
    logit_2z,
    logit_z,
    sem_errors,
)

__all__ = [
    "EnvData",
    "logit_z",
    "logit_2z",
    "invariant_ceiling",
    "irm_sem",
    "irm_sem_truth",
    "sem_errors",
    "SEMTruth",
]
