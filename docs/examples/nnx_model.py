"""Bring your own flax.nnx model: split it into (graphdef, state) and hand the solver a pair of functions."""

import jax
from flax import nnx

import jaxirm
from jaxirm.datasets import logit_z
from jaxirm.solvers import Batch, irm


class Net(nnx.Module):
    def __init__(self, din, rngs):
        self.l1 = nnx.Linear(din, 16, rngs=rngs)
        self.l2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jax.nn.relu(self.l1(x)))[:, 0]


graphdef, _ = nnx.split(Net(10, nnx.Rngs(0)))


def init_fn(key, x):
    return nnx.split(Net(x.shape[1], nnx.Rngs(params=key)))[1]


def apply_fn(state, x):
    return nnx.merge(graphdef, state)(x)


train, test = logit_z(0, n_train=1000, n_test=1000)
solver = irm((init_fn, apply_fn), penalty="tv_l1", lr=0.01, lam=100.0, anneal_steps=100)
res = jaxirm.fit(
    solver, jax.random.key(0), Batch(train.x, train.y, train.envs), 300, test=Batch(test.x, test.y, test.envs)
)
print(res.selection["final"])
sw = jaxirm.sweep(
    solver,
    Batch(train.x, train.y, train.envs),
    300,
    seeds=2,
    grid={"lam": [10.0, 100.0]},
    test=Batch(test.x, test.y, test.envs),
)
print(sw.configs)
print(sw.selection["final"]["test_worst"])
