"""Test configuration (root, so it runs before any module imports jax, doctests included).

8 emulated CPU devices for the sharding tests, and a small hypothesis profile for CI.
"""

import os

# Must run before jax is imported anywhere: the sharding tests need 8 host devices.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

# In-process CLI tests must leave jax's global config alone: no persistent compilation cache by default
# (tests/test_cli.py turns it on in a subprocess to test it).
os.environ.setdefault("JAXIRM_COMPILE_CACHE", "0")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
