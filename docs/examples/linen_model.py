"""Bring your own flax.linen model: a Module plugs into every solver directly."""

import flax.linen as nn
import jax

import jaxirm
from jaxirm.datasets import logit_z
from jaxirm.solvers import Batch, minimax


class TwoLayer(nn.Module):
    hidden: int = 32

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)[:, 0]  # logits [n] for a binary loss


train, test = logit_z(0, n_train=1000, n_test=1000)
# ZIN-type Minimax-TV-l1: environments are inferred from z (here the time index), not given.
solver = minimax(TwoLayer(), penalty="tv_l1", lr=0.01, lam=100.0, anneal_steps=100)
result = jaxirm.fit(
    solver,
    jax.random.key(0),
    Batch(train.x, train.y, z=train.z),
    num_steps=300,
    test=Batch(test.x, test.y, test.envs),
)
print(result.selection["final"])
