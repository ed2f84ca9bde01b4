"""Train IRM-TV-l1 on the simulation (the authors' setting) and report the three model selections."""

import jax

import jaxirm
from jaxirm.datasets import invariant_ceiling, logit_z
from jaxirm.models import MLP
from jaxirm.solvers import Batch, irm

train, test = logit_z(seed=0)  # p_s (0.999, 0.7) in training, (0.999, 0.8, 0.2, 0.001) at test
solver = irm(MLP(), penalty="tv_l1", lr=0.02, l2=0.002, lam=2000.0, anneal_steps=2000)
result = jaxirm.fit(
    solver,
    jax.random.key(0),
    Batch(train.x, train.y, train.envs),
    num_steps=5000,
    test=Batch(test.x, test.y, test.envs),
    eval_every=100,
)
for name, sel in result.selection.items():
    print(f"{name:>6}: step {sel['step']:5.0f}  mean {sel['test_mean']:.4f}  worst {sel['test_worst']:.4f}")
print(f"invariant ceiling: {invariant_ceiling(0.1, 5):.4f}")
