"""Datasets: embedded synthetic generators (numpy only, seeded).

Real-data loaders live behind optional extras and arrive with the reproduction work.
"""

from jaxirm.datasets.synthetic import EnvData, invariant_ceiling, logit_z

__all__ = ["EnvData", "logit_z", "invariant_ceiling"]
