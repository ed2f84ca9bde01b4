"""The built-in penalties with the `jaxirm.testing.check_penalty` options that fit each (shared by tests)."""

import jaxirm

PENALTY_CHECKS = [
    (jaxirm.tv_l2, {}),
    (jaxirm.tv_l1, {"dominated_by": jaxirm.tv_l2}),
    (jaxirm.vrex, {"zero_subgradient": False}),
]
PENALTY_IDS = ["tv_l2", "tv_l1", "vrex"]
