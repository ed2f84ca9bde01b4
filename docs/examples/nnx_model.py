"""Bring your own flax.nnx model: hand the module (or its class) to the solver, which splits and merges it."""

import functools

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
        return self.l2(jax.nn.relu(self.l1(x)))[:, 0]  # logits [n] for a binary loss


train, test = logit_z(0, n_train=1000, n_test=1000)
train_batch, test_batch = Batch(train.x, train.y, train.envs), Batch(test.x, test.y, test.envs)

# An instance: training starts from its weights; the module itself is not modified.
model = Net(10, nnx.Rngs(0))
solver = irm(model, penalty="tv_l1", lr=0.01, lam=100.0, anneal_steps=100)
result = jaxirm.fit(solver, jax.random.key(0), train_batch, 300, test=test_batch)
print(result.selection["final"])
nnx.update(model, result.state.params)  # the trained nnx.Param state, back into the module
print(model(test.x[:3]))  # the trained model's logits

# Its class (here a partial that leaves out rngs): each seed of a sweep starts from its own weights.
solver = irm(functools.partial(Net, 10), penalty="tv_l1", lr=0.01, lam=100.0, anneal_steps=100)
sw = jaxirm.sweep(solver, train_batch, 300, seeds=2, grid={"lam": [10.0, 100.0]}, test=test_batch)
print(sw.configs)
print(sw.selection["final"]["test_worst"])
