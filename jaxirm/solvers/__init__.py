"""Solvers: ERM, IRM / IRM-TV-ℓ1 / VREx, Minimax (ZIN-type) and OOD-TV primal-dual games, driven by optax.

Every factory returns a `Solver` — ``init(key, batch, hparams=None) -> SolverState`` and
``step(state, batch) -> (state, metrics)`` — of pure functions. Static configuration (the model, the loss, the
penalty kind) is closed over; everything one may sweep (``lam``, ``l2``, ``anneal_steps``, ``lr``) lives in
``state.hparams`` as arrays, so ``jax.vmap(solver.init)`` over a grid of hyperparameters compiles once.

The games share one step (Gauss–Seidel order, OOD-TV eqs. 17–18): Φ takes a descent step with the dual fixed,
then the dual players (ρ for Minimax, Ψ for OOD-TV) take an ascent step at the *new* Φ.

Conventions of the released code that are kept, and which are on by default:

* ERM warm-up: the penalty weight is 0 for ``anneal_steps`` steps, then ``lam`` (always on).
* ``rescale=True`` (IRM and Minimax; off for OOD-TV, as in its code): the loss is divided by 1 + λ once
  λ > 1. With Adam this matters mostly through the moment estimates at the switch; it is on by default because
  it is what produced the papers' numbers.
* ``rho_updates="warmup"`` for Minimax (ZIN trains ρ only while the penalty is off); OOD-TV-Minimax defaults
  to ``"always"`` (ρ ascends at every step, eq. 18); Ψ ascends once the penalty is on (before, λ_Ψ does not
  enter the loss).
"""

from jaxirm._types import Batch, Solver, SolverState
from jaxirm.solvers._eiil import eiil
from jaxirm.solvers._games import METHOD_NAMES, erm, irm, minimax, ood_tv
from jaxirm.solvers._lff import lff
from jaxirm.solvers._tiva import tiva

__all__ = [
    "Batch",
    "Solver",
    "SolverState",
    "erm",
    "irm",
    "minimax",
    "ood_tv",
    "eiil",
    "lff",
    "tiva",
    "METHOD_NAMES",
]
