"""Experiments on data the user supplies: King County house prices and the ZIN CelebA features.

Their files cannot be redistributed, so they are looked up in a data folder: the ``data_dir`` given to
`jaxirm.experiments.reproduce` or `jaxirm.experiments.search` (``jaxirm reproduce --data-dir DIR``), else
the folder named by the ``JAXIRM_DATA`` environment variable, else ``data/`` in the working directory
(`data_folder`). A missing file stops the run with a message naming the file and where it was looked for.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from jaxirm._validation import check_path
from jaxirm.datasets import celeba_features, king_county
from jaxirm.experiments._methods import describe_hparams, paper_methods, released_maps_note
from jaxirm.experiments._registry import Experiment, register
from jaxirm.experiments.house import house_prices
from jaxirm.models import MLP

__all__ = [
    "data_folder",
    "house_kc",
    "celeba",
    "CELEBA_HPARAMS",
    "CELEBA_FILES",
    "DATA_ENV",
    "KC_FILES",
]

DATA_ENV = "JAXIRM_DATA"
"""The environment variable naming the default folder of user-supplied data files."""

KC_FILES = ("kc_house_data.csv", "house_data_precessed.csv")
"""File names of the King County data, in the order they are looked for."""

CELEBA_FILES = (
    "CelebA/train_40000_0.999_0.8_20000_0.01_0.2_0.8_0.999.csv",
    "CelebA/test_40000_0.999_0.8_20000_0.01_0.2_0.8_0.999.csv",
)
"""The ZIN CelebA feature CSVs (training, test), relative to the data folder."""

CELEBA_HPARAMS = {"lr": 0.005, "l2": 0.001, "lam": 10000.0, "anneal_steps": 8000.0}
"""ZIN's CelebA command (its README reports 76.29 % for ZIN): Adam lr 0.005, L2 0.001, λ 10⁴ after 8000
warm-up steps, 8500 steps."""
CELEBA_STEPS = 8500
"""Training steps of ZIN's CelebA command."""
CELEBA_LFF_HPARAMS = {"lr": 0.0001, "l2": 0.001}
"""The released LfF parameter map for CelebA (github.com/laizhr/OOD-TV-IRM, file
``EIIL&LfF/EIIL&LfF_others/parameter.py``)."""
CELEBA_TIVA_HPARAMS = {"lr": 0.0001, "l2": 0.001, "lam": 2000.0, "anneal_steps": 1000.0}
"""The released TIVA parameter map for CelebA (github.com/laizhr/OOD-TV-IRM, file ``TIVA/parameter.py``)."""


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of user-supplied data: ``data_dir``, else ``$JAXIRM_DATA``, else ``data/`` (in the working
    directory).

    The one place that reads ``JAXIRM_DATA``: the loaders of the experiments with
    `Experiment.needs_data_dir` resolve the ``data_dir`` they are given (None when the caller gave none)
    here.

    Raises:
      TypeError: ``data_dir`` is not a path.
    """
    if data_dir is not None:
        return check_path("data_dir", data_dir)
    return Path(os.environ.get(DATA_ENV) or "data")


def data_dir() -> Path:
    """Deprecated alias of `data_folder` (``data_folder()``: ``$JAXIRM_DATA``, else ``data/``)."""
    warnings.warn(
        "jaxirm.experiments.user_data.data_dir() is deprecated; use data_folder(data_dir=None)",
        DeprecationWarning,
        stacklevel=2,
    )
    return data_folder()


def find_file(data_dir: str | os.PathLike | None, names: tuple[str, ...], what: str) -> Path:
    """The first of ``names`` that is a file in `data_folder` (``data_dir``).

    Raises:
      FileNotFoundError: none is; the message names every path looked at and how to point at the folder.
    """
    folder = data_folder(data_dir)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{what} not found: looked for {', '.join(str(folder / n) for n in names)}; put the file there or "
        f"point --data-dir (reproduce's data_dir) or {DATA_ENV} at the folder holding it"
    )


def _load_kc(seed: int, data_dir: str | os.PathLike | None = None):
    del seed  # one fixed split; the validation rows held out (Experiment.val) depend on the seed
    return king_county(find_file(data_dir, KC_FILES, "the King County house-sales CSV"), split="code")


def _load_celeba(seed: int, data_dir: str | os.PathLike | None = None):
    del seed  # fixed files; the validation rows held out (Experiment.val) depend on the seed
    train_path = find_file(data_dir, CELEBA_FILES[:1], "the ZIN CelebA training features")
    test_path = find_file(data_dir, CELEBA_FILES[1:], "the ZIN CelebA test features")
    return celeba_features(train_path, test_path)


_KC_SOURCE = "Wang, Lai & Zhong 2025, Table 4 (house prices, MSE)"
_KC_PAPER = {
    "EIIL": (0.3644, 0.0512, 0.4953, 0.0587),
    "ZIN": (0.3203, 0.0378, 0.4465, 0.0552),
    "OOD-TV-Minimax-l2": (0.2743, 0.0438, 0.3983, 0.0586),
    "Minimax-TV-l1": (0.3339, 0.0508, 0.4741, 0.0520),
    "OOD-TV-Minimax-l1": (0.2621, 0.0510, 0.3706, 0.0549),
    "IRM": (0.4589, 0.0762, 0.6378, 0.0873),
    "OOD-TV-IRM-l2": (0.3549, 0.0519, 0.4772, 0.0591),
    "IRM-TV-l1": (0.4009, 0.0355, 0.5642, 0.0615),
    "OOD-TV-IRM-l1": (0.3383, 0.0303, 0.4763, 0.0428),
    "TIVA": (0.3869, 0.0413, 0.5519, 0.0508),
}

_CELEBA_SOURCE = "Wang, Lai & Zhong 2025, Table 2 (CelebA)"
_CELEBA_PAPER = {
    "EIIL": (0.7323, 0.0284, 0.7240, 0.0291),
    "ZIN": (0.7155, 0.0298, 0.6034, 0.0544),
    "OOD-TV-Minimax-l2": (0.7608, 0.0187, 0.6895, 0.0243),
    "Minimax-TV-l1": (0.6876, 0.0190, 0.5541, 0.0301),
    "OOD-TV-Minimax-l1": (0.7044, 0.0361, 0.6180, 0.0580),
    "IRM": (0.7630, 0.0261, 0.7410, 0.0215),
    "OOD-TV-IRM-l2": (0.7786, 0.0157, 0.7549, 0.0227),
    "IRM-TV-l1": (0.7751, 0.0203, 0.7461, 0.0170),
    "OOD-TV-IRM-l1": (0.7945, 0.0162, 0.7560, 0.0170),
    "LfF": (0.6092, 0.0529, 0.5983, 0.0598),
    "TIVA": (0.7695, 0.0199, 0.7283, 0.0209),
}


@register("house-kc")
def house_kc() -> Experiment:
    """House prices on King County (your ``kc_house_data.csv``), the paper's Table 4, MSE.

    The released code's protocol (`jaxirm.datasets.king_county`, ``split="code"``): 7 training decades
    (1900–1969, 10 % of each held out for train-val selection), 5 test decades (1970–2019), 15 features,
    price z-scored within built year, z = built year. Φ: MLP with 32 hidden units, squared error; ρ: 64 hidden
    units, 4 inferred environments; ZIN's house command for every method (Adam lr 0.005, L2 0.001, λ 1000
    after 5000 warm-up steps, 5901 steps). The file is looked up in the data folder (`data_folder`).
    """
    return house_prices(
        "house-kc",
        _load_kc,
        num_envs=7,
        paper=_KC_PAPER,
        source=_KC_SOURCE,
        needs_data_dir=True,
        data_notes=(
            "data: King County house sales (user file kc_house_data.csv or the released code's "
            "house_data_precessed.csv); train decades 1900-1969 (the code's split; the paper's text says "
            "1900-1950), test 1970-2019",
        ),
    )


@register("celeba")
def celeba() -> Experiment:
    """CelebA Smiling from frozen ResNet-18 features (your ZIN feature CSVs), the paper's Table 2 (right).

    Training: 2 environments of about 20 000 in which Smiling agrees with Male in 99.9 % / 80 % (10 % held
    out for train-val selection); test: 4 environments of 5000 (1 %, 20 %, 80 %, 99.9 %). Φ: MLP with 16
    hidden units on the 512 features; ρ infers 2 environments from the 7 auxiliary attributes. ZIN's CelebA
    command for every method (Adam lr 0.005, L2 0.001, λ 10⁴ after 8000 warm-up steps, 8500 steps). The CSVs
    are looked up in the data folder's ``CelebA/`` (`data_folder`).
    """
    methods = paper_methods(
        MLP(hidden=(16,)),
        CELEBA_HPARAMS,
        paper=_CELEBA_PAPER,
        source=_CELEBA_SOURCE,
        lff_hparams=CELEBA_LFF_HPARAMS,
        tiva_hparams=CELEBA_TIVA_HPARAMS,
    )
    return Experiment(
        name="celeba",
        load=_load_celeba,
        needs_data_dir=True,
        methods=methods,
        num_steps=CELEBA_STEPS,
        notes=(
            f"data: the ZIN CelebA feature CSVs ({CELEBA_FILES[0]}, {CELEBA_FILES[1]})",
            "hyperparameters: ZIN's CelebA command for every method "
            f"({describe_hparams(CELEBA_HPARAMS, steps=CELEBA_STEPS)}, MLP 16 hidden)",
            released_maps_note("CelebA", CELEBA_STEPS, lff=CELEBA_LFF_HPARAMS, tiva=CELEBA_TIVA_HPARAMS),
        ),
    )
