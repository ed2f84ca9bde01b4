"""An experiment designed to tell TV-ℓ1 from TV-ℓ2: many training environments, one of them corrupted."""

from __future__ import annotations

import functools

from jaxirm.datasets import invariant_ceiling, logit_z
from jaxirm.experiments._methods import describe_hparams, paper_methods
from jaxirm.experiments._registry import Experiment, register
from jaxirm.experiments.simulation import SIMULATION_HPARAMS, SIMULATION_STEPS, logit_z_val
from jaxirm.models import MLP

__all__ = ["corrupted_env", "CORRUPTED_P_S", "CORRUPTED_NOISE"]

CORRUPTED_P_S = (0.999, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65)
"""Spurious agreement of the eight training environments."""
CORRUPTED_NOISE = (0.1,) * 7 + (0.45,)
"""Label noise of the eight training environments: the last one is corrupted (its invariant mechanism is
almost pure noise), the others follow the test environments' mechanism.
"""
_TRAINING = {"p_s_train": CORRUPTED_P_S, "noise_ratio_train": CORRUPTED_NOISE}


@register("corrupted-env")
def corrupted_env() -> Experiment:
    """TV-ℓ1 vs TV-ℓ2 with eight training environments, one of which has a corrupted mechanism.

    With two equal-sized environments and a model whose pooled risk is stationary in the dummy scale,
    g₁ = −g₂ and (mean |g|)² = mean g², so IRM and IRM-TV-ℓ1 coincide; the papers' settings cannot tell them
    apart. Here 8 environments (1000 examples each, spurious agreement 0.999 … 0.65) share the invariant
    mechanism (label noise 0.1) except the last, whose label noise is 0.45. The outlier's dummy-scale
    gradient is large whatever Φ does; TV-ℓ2 weights each environment's gradient by its size (∂ mean g² =
    mean 2g ∂g), TV-ℓ1 only by its sign (∂ (mean|g|)² = 2 mean|g| · mean sign(g) ∂g), so the coarea/robustness
    argument predicts that TV-ℓ1 is less pulled by the corrupted environment. Test environments are the
    usual four (noise 0.1), invariant ceiling 0.8899. Same hyperparameters as the simulation experiment.
    """
    methods = paper_methods(
        MLP(), SIMULATION_HPARAMS, num_envs=8, vrex=True, names=("ERM", "IRM", "IRM-TV-l1", "VREx")
    )
    return Experiment(
        name="corrupted-env",
        load=functools.partial(logit_z, n_train=8000, **_TRAINING),
        val=logit_z_val(n_train=1600, **_TRAINING),
        methods=methods,
        num_steps=SIMULATION_STEPS,
        ceiling=invariant_ceiling(0.1, 5),
        notes=(
            f"training p_s {CORRUPTED_P_S}, label noise {CORRUPTED_NOISE} "
            "(the last environment is corrupted); test p_s (0.999, 0.8, 0.2, 0.001), label noise 0.1; "
            "1000 examples per training environment",
            "hyperparameters as the simulation experiment: "
            + describe_hparams(SIMULATION_HPARAMS, steps=SIMULATION_STEPS),
        ),
    )
