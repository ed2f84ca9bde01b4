"""Where the tests find the real MNIST files (never copied into the repository).

``$JAXIRM_MNIST_DIR``, else ``<repo>/../shared/data/mnist`` (the project's shared data folder; CI exports
``JAXIRM_MNIST_DIR``). Tests on them skip when the folder is absent, unless ``JAXIRM_REQUIRE_DATA=1`` (set in
CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST_DIR_ENV = "JAXIRM_MNIST_DIR"
DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def real_mnist_dir() -> Path:
    """The folder of the four real MNIST files; skips (or fails under JAXIRM_REQUIRE_DATA) when absent."""
    folder = Path(os.environ.get(MNIST_DIR_ENV) or DEFAULT_MNIST_DIR)
    if not folder.is_dir() or not any(folder.glob("train-images*")):
        message = (
            f"the real MNIST files are not in {folder} (set {MNIST_DIR_ENV} to the folder holding "
            "train-images-idx3-ubyte[.gz] and the three other files)"
        )
        if os.environ.get("JAXIRM_REQUIRE_DATA"):
            pytest.fail(f"JAXIRM_REQUIRE_DATA=1: {message}")
        pytest.skip(message)
    return folder
