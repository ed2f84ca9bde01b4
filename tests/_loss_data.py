"""Shared test data for the loss-level tests: the three built-in losses and matching random inputs."""

import numpy as np

from jaxirm.losses import bce_with_logits, softmax_cross_entropy, squared_error

LOSSES = (
    ("bce", bce_with_logits),
    ("squared", squared_error),
    ("ce", softmax_cross_entropy),
)
NUM_CLASSES = 3


def loss_data(loss_fn, n, seed):
    """Float64 logits and targets for ``loss_fn`` (numpy, converted by the caller)."""
    rng = np.random.default_rng(seed)
    if loss_fn is softmax_cross_entropy:
        return 2.0 * rng.normal(size=(n, NUM_CLASSES)), rng.integers(0, NUM_CLASSES, n)
    if loss_fn is bce_with_logits:
        return 2.0 * rng.normal(size=n), rng.integers(0, 2, n).astype(np.float64)
    return rng.normal(size=n), rng.normal(size=n)
