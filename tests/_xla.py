"""XLA compiler options shared by the tests (private helper module, not collected: no ``test_`` prefix)."""

#: Unoptimised XLA builds: tests that check values, not speed, compile several times faster with them on a
#: loaded CPU (pass as ``jax.jit(f, compiler_options=FAST)``).
FAST = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
