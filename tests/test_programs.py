"""The compiled sweep programs `reproduce` keeps beside JAX's cache (`jaxirm.experiments._programs`): keys
that change with everything that shapes a program, and files that load only under their own key."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxirm.experiments._programs import ProgramStore, program_key

ID = {"experiment": "simulation", "method": "ZIN"}


def _args(n=8, dtype=jnp.float32):
    return (jnp.zeros((2,), jnp.uint32), {"lam": jnp.ones((2, 1), dtype)}, jnp.ones((2, n, 3), dtype))


STATIC = {"solver": object(), "num_steps": 100, "eval_every": 10, "metric": "accuracy", "keep": ()}


def test_key_is_stable_and_names_everything_that_shapes_the_program():
    key = program_key(ID, _args(), STATIC)
    assert key == program_key(ID, _args(), {**STATIC, "solver": object()})  # the solver is named by ID
    assert len(key) == 64 and int(key, 16) >= 0
    changed = {
        "method": program_key({**ID, "method": "Minimax-TV-l1"}, _args(), STATIC),
        "experiment": program_key({**ID, "experiment": "adult"}, _args(), STATIC),
        "a shape": program_key(ID, _args(n=9), STATIC),
        "a dtype": program_key(ID, _args(dtype=jnp.float16), STATIC),
        "the tree": program_key(ID, (*_args(), None), STATIC),
        "a hyperparameter name": program_key(ID, (_args()[0], {"lr": _args()[1]["lam"]}, _args()[2]), STATIC),
        "the steps": program_key(ID, _args(), {**STATIC, "num_steps": 101}),
        "the evaluation": program_key(ID, _args(), {**STATIC, "eval_every": 20}),
    }
    assert len(set(changed.values())) == len(changed) and key not in changed.values(), changed


def test_key_follows_the_mesh():
    mesh = jax.make_mesh((1,), ("sweep",), devices=jax.devices()[:1])
    other = jax.make_mesh((1,), ("sweep",), devices=jax.devices()[-1:])
    a, b = (program_key(ID, _args(), {**STATIC, "mesh": m}) for m in (mesh, other))
    assert (a == b) == (jax.devices()[0] == jax.devices()[-1])


def _fresh_program():
    f = jax.jit(lambda x, y: jnp.tanh(x @ y).sum(0))
    x = jnp.arange(12.0).reshape(4, 3)
    return f.lower(x, x.T).compile(), (x, x.T)


def test_store_round_trip_runs_the_same_program(tmp_path):
    program, args = _fresh_program()
    store = ProgramStore(tmp_path / "programs")
    assert store.load("k" * 64) is None  # nothing stored yet
    assert store.save("k" * 64, program)
    loaded = store.load("k" * 64)
    np.testing.assert_array_equal(np.asarray(loaded(*args)), np.asarray(program(*args)))
    assert [p.name for p in (tmp_path / "programs").iterdir()] == ["k" * 64 + ".program"]


@pytest.mark.parametrize("damage", ["torn", "garbage", "another key"])
def test_a_damaged_or_foreign_file_is_not_loaded(tmp_path, damage):
    program, _ = _fresh_program()
    store = ProgramStore(tmp_path)
    store.save("a" * 64, program)
    path = tmp_path / ("a" * 64 + ".program")
    if damage == "torn":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a program")
    else:  # a file copied under another key's name
        path.rename(tmp_path / ("b" * 64 + ".program"))
        path = tmp_path / ("b" * 64 + ".program")
    assert store.load(path.stem) is None


def test_save_reports_a_folder_it_cannot_write(tmp_path):
    program, _ = _fresh_program()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ProgramStore(blocker / "programs").save("c" * 64, program) is False


@pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 devices (XLA_FLAGS from conftest.py)")
def test_store_round_trip_keeps_the_programs_devices_and_their_order(tmp_path):
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((2,), ("sweep",), devices=[jax.devices()[3], jax.devices()[1]])
    x = jax.device_put(jnp.arange(8.0).reshape(2, 4), NamedSharding(mesh, P("sweep")))
    program = jax.jit(lambda a: jnp.cumsum(a, axis=1) * 2.0).lower(x).compile()
    store = ProgramStore(tmp_path)
    assert store.save("d" * 64, program)
    loaded = store.load("d" * 64)
    out = loaded(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(program(x)))
    assert [s.device.id for s in out.addressable_shards] == [3, 1]


def test_store_keeps_the_most_recently_used_programs(tmp_path):
    program, args = _fresh_program()
    store = ProgramStore(tmp_path, max_files=2)
    for i, key in enumerate(("a" * 64, "b" * 64, "c" * 64)):
        assert store.save(key, program)
        # distinct, increasing use times whatever the file system's timestamp resolution
        os.utime(tmp_path / f"{key}.program", ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
        if key == "b" * 64:
            assert store.load("a" * 64) is not None  # a load marks "a" used now, after "b"
    assert sorted(p.stem[0] for p in tmp_path.iterdir()) == ["a", "c"]
