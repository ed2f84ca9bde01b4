"""Datasets: embedded synthetic generators (numpy only, seeded) and real-data loaders.

Every dataset comes as ``(train, test)`` `EnvData` (examples, environment labels, auxiliary variable z);
`holdout` splits off a validation part and `to_batch` turns one (or one per seed) into the solvers' `Batch`.
The real-data loaders read files that optional packages bundle or that the user gives; each says what to
install when its files are missing. This module only re-exports: the synthetic generators live in
`jaxirm.datasets.synthetic` and `jaxirm.datasets.sem`, the loaders in one module per dataset.
"""

from jaxirm.datasets._base import EnvData, holdout, to_batch
from jaxirm.datasets._idx import MNIST_MD5, load_mnist, read_idx
from jaxirm.datasets.adult import ADULT_SUBGROUPS, adult
from jaxirm.datasets.celeba import celeba_features
from jaxirm.datasets.house import AMES_FEATURES, AMES_SPLITS, KC_FEATURES, KC_SPLITS, ames, king_county
from jaxirm.datasets.landcover import (
    AFRICA_BOX,
    LANDCOVER_CHANNELS,
    LANDCOVER_CLASSES,
    LANDCOVER_STEPS,
    landcover,
)
from jaxirm.datasets.mnist import (
    COLORED_MNIST_CHANCE,
    COLORED_MNIST_DIM,
    colored_mnist,
    colored_mnist_ceiling,
)
from jaxirm.datasets.sem import SEMTruth, irm_sem, irm_sem_truth, sem_errors
from jaxirm.datasets.synthetic import invariant_ceiling, logit_2z, logit_z

__all__ = [
    "EnvData",
    "logit_z",
    "logit_2z",
    "invariant_ceiling",
    "irm_sem",
    "irm_sem_truth",
    "sem_errors",
    "SEMTruth",
    "colored_mnist",
    "colored_mnist_ceiling",
    "read_idx",
    "load_mnist",
    "MNIST_MD5",
    "COLORED_MNIST_CHANCE",
    "COLORED_MNIST_DIM",
    "landcover",
    "LANDCOVER_CLASSES",
    "LANDCOVER_STEPS",
    "LANDCOVER_CHANNELS",
    "AFRICA_BOX",
    "holdout",
    "to_batch",
    "adult",
    "ADULT_SUBGROUPS",
    "king_county",
    "ames",
    "KC_FEATURES",
    "KC_SPLITS",
    "AMES_FEATURES",
    "AMES_SPLITS",
    "celeba_features",
]
