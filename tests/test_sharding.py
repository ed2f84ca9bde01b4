"""Per-shard penalties under `jax.shard_map` (8 emulated CPU devices, set up in the root conftest.py).

A dummy scale that is a Python literal is unvarying across the mesh axis, so under `shard_map` the transpose
of its broadcast is a ``psum``: its gradient silently becomes the sum over all shards. jaxirm builds the
dummy scale from the data, so every shard keeps its own g. The naive version is reproduced here to show that
the comparison can tell the two apart.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import f32_tol
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxirm
from jaxirm.losses import bce_with_logits, scale_derivative, softmax_cross_entropy

NUM_DEVICES = 8
PER_SHARD = 6
NUM_ENVS = 3

pytestmark = pytest.mark.skipif(
    jax.device_count() < NUM_DEVICES, reason=f"needs {NUM_DEVICES} devices (XLA_FLAGS from conftest.py)"
)


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((NUM_DEVICES,), ("d",))


def _problem(loss_fn, kind, seed=0):
    n = NUM_DEVICES * PER_SHARD
    rng = np.random.default_rng(seed)
    if loss_fn is softmax_cross_entropy:
        f, y = (2.0 * rng.normal(size=(n, 4))).astype(np.float32), rng.integers(0, 4, n).astype(np.int32)
    else:
        f, y = (2.0 * rng.normal(size=n)).astype(np.float32), rng.integers(0, 2, n).astype(np.float32)
    if kind == "labels":
        envs = rng.integers(0, NUM_ENVS, n).astype(np.int32)
    else:
        envs = rng.uniform(0.1, 1.0, size=(n, NUM_ENVS)).astype(np.float32)
    return f, y, envs


def _put(mesh, *arrays):
    return tuple(jax.device_put(a, NamedSharding(mesh, P("d"))) for a in arrays)


def _grads_tol(loss_fn, f, y):
    """Two float32 computations of weighted means Σ w d / Σ w of PER_SHARD derivatives d (≤ 8 roundings
    each): numerator and denominator are within PER_SHARD·eps32 of Σ w|d| and Σ w, so the means within
    (2·PER_SHARD + 9)·eps32·max|d|."""
    return f32_tol(2 * PER_SHARD + 9, np.abs(np.asarray(scale_derivative(loss_fn, f, y))).max())


def _per_shard_reference(loss_fn, f, y, envs, num_envs):
    """Single-device values on each shard's slice (numpy slices of numpy inputs)."""
    fn = jax.jit(lambda a, b, e: jaxirm.scale_grads(loss_fn, a, b, e, num_envs=num_envs))
    out = []
    for k in range(NUM_DEVICES):
        rows = slice(k * PER_SHARD, (k + 1) * PER_SHARD)
        out.append(np.asarray(fn(f[rows], y[rows], envs[rows])))
    return np.stack(out)


@pytest.mark.parametrize("kind", ["labels", "weights"])
@pytest.mark.parametrize("loss_fn", [bce_with_logits, softmax_cross_entropy], ids=["bce", "ce"])
def test_scale_grads_are_per_shard(mesh, loss_fn, kind):
    f, y, envs = _problem(loss_fn, kind)
    num_envs = NUM_ENVS if kind == "labels" else None

    def per_shard(a, b, e):
        g = jaxirm.scale_grads(loss_fn, a, b, e, num_envs=num_envs)
        return g[None], jaxirm.tv_l1(g)[None]

    sharded = jax.jit(jax.shard_map(per_shard, mesh=mesh, in_specs=P("d"), out_specs=P("d")))
    grads, penalties = sharded(*_put(mesh, f, y, envs))
    assert grads.shape == (NUM_DEVICES, NUM_ENVS) and penalties.shape == (NUM_DEVICES,)
    expected = _per_shard_reference(loss_fn, f, y, envs, num_envs)
    tol = _grads_tol(loss_fn, f, y)
    np.testing.assert_allclose(grads, expected, rtol=0, atol=tol)
    expected_tv = np.mean(np.abs(expected), axis=1) ** 2
    # tv_l1 = (mean|g|)²: within 2·max|g|·(the bound on g) plus its own 4 roundings
    tv_tol = 2 * np.abs(expected).max() * tol + f32_tol(4, expected_tv.max())
    np.testing.assert_allclose(penalties, expected_tv, rtol=0, atol=tv_tol)
    # the shards really differ (otherwise a psum'd answer could pass)
    assert np.ptp(expected[:, 0]) > 1e-2


def test_split_scale_grads_are_per_shard(mesh):
    f, y, envs = _problem(bce_with_logits, "labels", seed=1)

    def per_shard(a, b, e):
        split = jaxirm.split_scale_grads(bce_with_logits, a, b, e, num_envs=NUM_ENVS)
        return split[None]

    sharded = jax.jit(jax.shard_map(per_shard, mesh=mesh, in_specs=P("d"), out_specs=P("d")))
    got = np.asarray(
        sharded(*_put(mesh, f, y, envs))
    )  # numpy: indexing an explicitly sharded array is an error
    ref = jax.jit(lambda a, b, e: jaxirm.split_scale_grads(bce_with_logits, a, b, e, num_envs=NUM_ENVS))
    tol = _grads_tol(bce_with_logits, f, y)  # halves hold fewer examples: the same bound holds
    for k in range(NUM_DEVICES):
        rows = slice(k * PER_SHARD, (k + 1) * PER_SHARD)
        np.testing.assert_allclose(got[k], ref(f[rows], y[rows], envs[rows]), rtol=0, atol=tol)


def test_literal_dummy_scale_is_psummed_and_the_check_catches_it(mesh):
    """The bug the library avoids: jax.grad over a literal w = 1.0 inside shard_map sums over shards."""
    f, y, envs = _problem(bce_with_logits, "labels", seed=2)

    def naive(a, b, e):
        def risk(w, k):  # masked env mean at a common scalar scale w
            return jaxirm.env_risks(bce_with_logits, a, b, e, num_envs=NUM_ENVS, scale=w)[k]

        g = jnp.stack([jax.grad(risk)(1.0, k) for k in range(NUM_ENVS)])
        return g[None]

    got = jax.jit(jax.shard_map(naive, mesh=mesh, in_specs=P("d"), out_specs=P("d")))(*_put(mesh, f, y, envs))
    per_shard = _per_shard_reference(bce_with_logits, f, y, envs, NUM_ENVS)
    # every shard gets the sum over shards (8 per-shard means, each within the bound, then an 8-term sum) ...
    tol = NUM_DEVICES * _grads_tol(bce_with_logits, f, y) + f32_tol(NUM_DEVICES, np.abs(per_shard).sum(0))
    np.testing.assert_allclose(got, np.broadcast_to(per_shard.sum(0), got.shape), rtol=0, atol=tol.max())
    # ... which is not its own value: the per-shard test above would fail on this implementation
    assert not np.allclose(got, per_shard, rtol=1e-3, atol=1e-4)


# A sweep's runs are independent: its program must not make the devices talk to each other at every step.
# `jaxirm._tree.when` reduces "does any run need this branch" over the run axis; left to the SPMD partitioner
# that reduction became an all-reduce (and a rendezvous of every device) inside the training loop.
_COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")


def _small_minimax_sweep(mesh, seeds):
    from jaxirm._sweep import prepare
    from jaxirm.datasets import logit_z, to_batch
    from jaxirm.models import MLP

    solver = jaxirm.solvers.minimax(MLP(), penalty="tv_l1")
    data = [logit_z(s, n_train=64, n_test=32) for s in seeds]
    kwargs = dict(
        seeds=list(seeds),
        grid={"anneal_steps": [3.0]},  # ρ ascends in steps 0-2 only: the `when` branch is taken, then skipped
        test=to_batch([test for _, test in data], with_z=False),
        eval_every=3,
        mesh=mesh,
        data_per_seed=True,
    )
    return solver, to_batch([train for train, _ in data], with_z=True), kwargs, prepare


def test_sweep_program_has_no_cross_device_communication():
    mesh = jax.make_mesh((NUM_DEVICES,), ("sweep",), axis_types=(jax.sharding.AxisType.Auto,))
    solver, batch, kwargs, prepare = _small_minimax_sweep(mesh, range(NUM_DEVICES))
    from jaxirm._sweep import _program_jit

    prepared = prepare(solver, batch, 6, **kwargs)
    hlo = _program_jit.lower(*prepared.args, **prepared.static).compile().as_text()
    assert "while" in hlo  # the training loop is in this program
    found = [op for op in _COLLECTIVES if op in hlo]
    assert not found, f"the sweep program communicates across devices: {found}"


def test_minimax_sweep_on_8_devices_equals_each_run_alone():
    # Each device decides `when`'s branch for its own runs only; the runs' values must not depend on which
    # runs share a device. The two programs are compiled separately and may sum in other orders: each of the
    # 6 steps sums 64 examples (≤ 64 roundings on the longest path), and Adam's normalised update carries a
    # relative perturbation forward without growing it, so the losses and penalties agree within
    # f32_tol(6 · 64) relative; the accuracies are counts of 32 test examples per environment and agree
    # exactly unless a logit within that bound of 0 flips, which these seeds do not have.
    seeds = range(NUM_DEVICES)
    mesh8 = jax.make_mesh((NUM_DEVICES,), ("sweep",), axis_types=(jax.sharding.AxisType.Auto,))
    solver, batch, kwargs, _ = _small_minimax_sweep(mesh8, seeds)
    together = jaxirm.sweep(solver, batch, 6, **kwargs)
    mesh1 = jax.make_mesh(
        (1,), ("sweep",), devices=jax.devices()[:1], axis_types=(jax.sharding.AxisType.Auto,)
    )
    for i, seed in enumerate(seeds):
        one = jax.tree_util.tree_map(lambda a, i=i: a[i : i + 1], (batch, kwargs["test"]))
        alone = jaxirm.sweep(solver, one[0], 6, **{**kwargs, "seeds": [seed], "test": one[1], "mesh": mesh1})
        for key in ("test_mean", "test_worst"):
            np.testing.assert_array_equal(together.history[key][i], alone.history[key][0], err_msg=key)
        for key in ("penalty", "loss"):
            np.testing.assert_allclose(
                together.history[key][i], alone.history[key][0], rtol=f32_tol(6 * 64), err_msg=key
            )
