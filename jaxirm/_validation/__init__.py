"""The one validation layer of the public boundary (private).

Every check runs in Python on static information (shapes, dtypes, Python values) so it fires *before*
tracing, also when the public function is called inside `jax.jit`; checks on values (label ranges, signs of
weights) run only when the array is concrete. Scalars and hyperparameters: `_scalars`; arrays of the maths
contract: `_arrays`; the batches and run arguments of `fit`/`sweep`/`run`: `_batches`.
"""

from jaxirm._validation._arrays import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    as_array,
    check_envs,
    check_logits,
    check_measure,
    check_num_envs,
    check_split,
    check_targets,
    check_vector,
    concrete_values,
    is_concrete,
    loss_kind,
)
from jaxirm._validation._scalars import (
    HPARAM_RULES,
    UINT32_SEEDS,
    check_choice,
    check_fraction,
    check_hparams,
    check_int,
    check_key,
    check_number,
    check_numbers,
    check_path,
    check_prob,
    check_seed,
    out_of_range,
)

__all__ = [
    "BINARY",
    "HPARAM_RULES",
    "MULTICLASS",
    "REGRESSION",
    "UINT32_SEEDS",
    "as_array",
    "check_choice",
    "check_envs",
    "check_fraction",
    "check_hparams",
    "check_int",
    "check_key",
    "check_logits",
    "check_measure",
    "check_num_envs",
    "check_number",
    "check_numbers",
    "check_path",
    "check_prob",
    "check_seed",
    "check_split",
    "check_targets",
    "check_vector",
    "concrete_values",
    "is_concrete",
    "loss_kind",
    "out_of_range",
]
