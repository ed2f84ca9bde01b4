"""Hypothesis strategies and property checkers for penalties, split estimators and environment pipelines.

For users who property-test their own penalties and solvers with hypothesis. Two halves:

* **Strategies** draw the inputs of the maths contract: environment labels and soft weights (with padding
  environments and padding examples), logits and targets for the three built-in losses, probability measures,
  environment gradients, and whole problems. Shapes come from a few buckets (`SIZE_BUCKETS`, `ENV_BUCKETS`,
  `CLASS_BUCKETS`) because `jax.jit` compiles once per new shape.
* **Checkers** run the properties every penalty of this library satisfies on given inputs and raise an
  `AssertionError` naming the property that failed: `check_penalty` (g, μ) -> scalar, `check_split_penalty`
  for split-batch estimators, and `check_env_pipeline` for the whole loss -> `scale_grads` -> penalty path.

hypothesis is not a core dependency: install the ``test`` extra (``pip install -e ".[test]"`` in the clone).

Examples:
  >>> from hypothesis import given
  >>> import jaxirm
  >>> from jaxirm import testing
  >>> @given(testing.env_grads(3), testing.measures(3))
  ... def test_tv_l1(g, mu):
  ...     testing.check_penalty(jaxirm.tv_l1, g, mu, dominated_by=jaxirm.tv_l2)
  >>> test_tv_l1()
"""

# First, so that without the test extra the error says how to install it.
try:
    from hypothesis import strategies as _hypothesis_strategies  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without the test extra
    raise ImportError('jaxirm.testing needs hypothesis: pip install -e ".[test]" in the clone') from err

from jaxirm.testing._checks import check_penalty, check_split_penalty
from jaxirm.testing._pipeline import check_env_pipeline
from jaxirm.testing._strategies import (
    CLASS_BUCKETS,
    ENV_BUCKETS,
    LOSS_KINDS,
    SIZE_BUCKETS,
    Problem,
    class_counts,
    env_assignments,
    env_counts,
    env_grads,
    env_labels,
    env_weights,
    logits,
    measures,
    problems,
    sizes,
    targets,
)

__all__ = [
    "SIZE_BUCKETS",
    "ENV_BUCKETS",
    "CLASS_BUCKETS",
    "LOSS_KINDS",
    "Problem",
    "sizes",
    "env_counts",
    "class_counts",
    "env_labels",
    "env_weights",
    "env_assignments",
    "logits",
    "targets",
    "measures",
    "env_grads",
    "problems",
    "check_penalty",
    "check_split_penalty",
    "check_env_pipeline",
]
