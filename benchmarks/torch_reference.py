"""A PyTorch IRM-TV-ℓ1 loop written from the released code's equations: the speed and correctness baseline.

The loop follows the released IRM-TV training code of paper 1 (Lai & Wang, "Invariant Risk Minimization Is A
Total Variation Model", arXiv 2405.01389), as published in github.com/laizhr/OOD-TV-IRM: the training loop of
``IRM-TV/IRM_TV-Others/main.py`` (ZIN style) with the ``irmv1_tvl1`` penalty of
``IRM-TV/IRM_TV-Others/algorithms/irmv1_tvl1.py``. It is written from those equations, not copied:

* eager PyTorch, full batch, one scalar dummy classifier ``s = torch.tensor(1.0, requires_grad=True)``
  created once per run and never optimised; logits ``s · f(x)``;
* per-example BCE ℓ_i; environment "risks" as masked means over **all** N examples,
  R̃_e = (1/N) Σ_i 1[env_i = e] ℓ_i, and one ``torch.autograd.grad(R̃_e, s, create_graph=True)`` per
  environment, G_e;
* the IRM-TV-ℓ1 penalty (Σ_e |G_e|)²;
* loss = mean_i ℓ_i + l2·Σ‖θ‖² + pw·max(penalty, 0), pw = λ once ``step >= anneal_steps`` else 0, and
  loss /= 1 + pw when pw > 1; Adam on the model;
* the model is ``nn.Linear(d, 1)`` with Xavier-uniform weight and zero bias (the init scheme of
  `jaxirm.models.MLP`; the draws themselves differ between frameworks).

The functions take numpy arrays, so both implementations train on the same data (e.g. from
`jaxirm.datasets.logit_z`). `env_loop_penalty` is the per-environment-loop penalty used by the
environment-scaling comparison in `benchmarks.compare`.

PyTorch is an optional dependency (the ``bench`` extra): importing this module without it raises an
ImportError that says how to install it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError(
        'benchmarks.torch_reference needs PyTorch, an optional extra of jaxirm: pip install -e ".[bench]"'
    ) from err

__all__ = [
    "make_linear",
    "train_irm_tv_l1",
    "accuracy_per_env",
    "env_loop_penalty",
    "env_loop_penalty_and_grad",
    "torch_info",
    "to_torch",
]


def torch_info() -> dict[str, Any]:
    """The PyTorch build the timings were measured with.

    Returns:
      ``{"torch_version", "torch_num_threads", "torch_num_interop_threads"}``.
    """
    return {
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
    }


def make_linear(
    dim: int, seed: int = 0, init: tuple[np.ndarray, np.ndarray] | None = None
) -> torch.nn.Linear:
    """``nn.Linear(dim, 1)`` with Xavier-uniform weight and zero bias, or with given initial values.

    Args:
      dim: number of input features.
      seed: seed of the torch generator used for the Xavier draw.
      init: optional ``(weight [dim] or [dim, 1], bias [] or [1])`` to start from instead (e.g. the
        parameters of a jaxirm run, to train both from the same point).

    Returns:
      The float32 linear model.
    """
    model = torch.nn.Linear(dim, 1)
    with torch.no_grad():
        if init is None:
            gen = torch.Generator().manual_seed(int(seed))
            torch.nn.init.xavier_uniform_(model.weight, generator=gen)
            torch.nn.init.zeros_(model.bias)
        else:
            weight, bias = init
            model.weight.copy_(torch.as_tensor(np.asarray(weight, np.float32).reshape(1, dim)))
            model.bias.copy_(torch.as_tensor(np.asarray(bias, np.float32).reshape(1)))
    return model


def _as_tensors(x: np.ndarray, y: np.ndarray, envs: np.ndarray) -> tuple[torch.Tensor, ...]:
    x_t = torch.as_tensor(np.ascontiguousarray(x, np.float32))
    y_t = torch.as_tensor(np.ascontiguousarray(y, np.float32))
    envs_t = torch.as_tensor(np.ascontiguousarray(envs, np.int64))
    return x_t, y_t, envs_t


def accuracy_per_env(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, envs: np.ndarray) -> np.ndarray:
    """Accuracy of a binary classifier (logit > 0) in every environment of a labelled set.

    Args:
      model: a model mapping ``[n, d]`` to ``[n, 1]`` logits.
      x: ``[n, d]`` inputs.
      y: ``[n]`` labels in {0, 1}.
      envs: ``[n]`` integer environment labels in ``[0, E)``.

    Returns:
      ``[E]`` accuracies (numpy float64).
    """
    x_t, y_t, envs_t = _as_tensors(x, y, envs)
    with torch.no_grad():
        correct = ((model(x_t)[:, 0] > 0) == (y_t > 0.5)).double()
    num_envs = int(envs_t.max()) + 1
    return np.array([float(correct[envs_t == e].mean()) for e in range(num_envs)])


def train_irm_tv_l1(
    x: np.ndarray,
    y: np.ndarray,
    envs: np.ndarray,
    *,
    num_steps: int,
    lr: float = 0.02,
    l2: float = 0.002,
    lam: float = 2000.0,
    anneal_steps: int = 2000,
    seed: int = 0,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Trains a linear model with IRM-TV-ℓ1 the way the released PyTorch loop does, and times the loop.

    Only the training loop is timed (not the tensor conversion, the model construction or the evaluation).

    Args:
      x: ``[n, d]`` training inputs.
      y: ``[n]`` binary labels in {0, 1}.
      envs: ``[n]`` integer environment labels in ``[0, E)``.
      num_steps: number of full-batch Adam steps.
      lr: Adam learning rate.
      l2: weight of Σ‖θ‖² (weight and bias).
      lam: penalty weight λ once ``step >= anneal_steps``.
      anneal_steps: number of warm-up steps with the penalty weight 0.
      seed: seed of the Xavier-uniform initialisation.
      init: optional initial ``(weight, bias)`` (overrides ``seed``).
      test: optional ``(x, y, envs)`` of a test set, evaluated once after the last step.

    Returns:
      ``{"train_s", "step_ms", "num_steps", "weight" [d], "bias" [], "penalty", "loss"}`` and, with a test
      set, ``"test_env"`` (per-environment accuracy), ``"test_mean"`` and ``"test_worst"``.
    """
    x_t, y_t, envs_t = _as_tensors(x, y, envs)
    num_envs = int(envs_t.max()) + 1
    # The released code's environment indicators are data columns (g and 1 − g), built once.
    masks = [(envs_t == e).float() for e in range(num_envs)]
    model = make_linear(x_t.shape[1], seed=seed, init=init)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scale = torch.tensor(1.0, requires_grad=True)
    loss = penalty = torch.zeros(())

    start = time.perf_counter()
    for step in range(num_steps):
        logits = scale * model(x_t)[:, 0]
        nll = F.binary_cross_entropy_with_logits(logits, y_t, reduction="none")
        grads = []
        for mask in masks:
            risk_e = (nll * mask).mean()
            grads.append(torch.autograd.grad(risk_e, [scale], create_graph=True)[0])
        penalty = sum(g.abs() for g in grads) ** 2
        reg = sum(p.pow(2).sum() for p in model.parameters())
        weight = lam if step >= anneal_steps else 0.0
        loss = nll.mean() + l2 * reg + weight * penalty.clamp(min=0.0)
        if weight > 1.0:
            loss = loss / (1.0 + weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_s = time.perf_counter() - start

    out: dict[str, Any] = {
        "train_s": train_s,
        "step_ms": 1e3 * train_s / max(num_steps, 1),
        "num_steps": num_steps,
        "weight": model.weight.detach().numpy()[0].copy(),
        "bias": float(model.bias.detach()[0]),
        "penalty": float(penalty.detach()),
        "loss": float(loss.detach()),
    }
    if test is not None:
        per_env = accuracy_per_env(model, *test)
        out["test_env"] = per_env
        out["test_mean"] = float(per_env.mean())
        out["test_worst"] = float(per_env.min())
    return out


def env_loop_penalty(
    logits: torch.Tensor, y: torch.Tensor, envs: torch.Tensor, num_envs: int
) -> torch.Tensor:
    """TV-ℓ1 penalty (mean_e |∂R_e/∂s|)² with one ``autograd.grad`` per environment (the released way).

    R_e(s) is the mean BCE of environment e of the logits scaled by a scalar dummy classifier s (per-env mean,
    the uniform environment measure of ``jaxirm.tv_l1``); every environment takes its own double-backward
    pass over all n examples, so the cost is O(n·E). An environment without examples contributes 0.

    Args:
      logits: ``[n]`` float logits (may require grad).
      y: ``[n]`` binary labels.
      envs: ``[n]`` integer environment labels in ``[0, num_envs)``.
      num_envs: number of environments E.

    Returns:
      The scalar penalty, differentiable with respect to ``logits``.
    """
    scale = torch.ones((), dtype=logits.dtype, requires_grad=True)
    nll = F.binary_cross_entropy_with_logits(scale * logits, y, reduction="none")
    total = torch.zeros((), dtype=logits.dtype)
    for e in range(num_envs):
        mask = envs == e
        count = mask.sum()
        if int(count) == 0:
            continue
        risk_e = (nll * mask).sum() / count
        total = total + torch.autograd.grad(risk_e, [scale], create_graph=True)[0].abs()
    return (total / num_envs) ** 2


def env_loop_penalty_and_grad(
    logits: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    envs: np.ndarray | torch.Tensor,
    num_envs: int,
) -> tuple[float, np.ndarray]:
    """Value and gradient (with respect to the logits) of `env_loop_penalty`.

    The counterpart of ``jax.value_and_grad(lambda f: tv_l1(scale_grads(bce, f, y, envs, E)))`` timed in
    `benchmarks.env_scaling`.

    Args:
      logits: ``[n]`` logits.
      y: ``[n]`` binary labels.
      envs: ``[n]`` integer environment labels.
      num_envs: number of environments E.

    Returns:
      ``(penalty, d penalty / d logits [n])`` as a float and a numpy array.
    """
    f = torch.as_tensor(logits, dtype=torch.float32).detach().requires_grad_(True)
    y_t = torch.as_tensor(y, dtype=torch.float32)
    envs_t = torch.as_tensor(envs, dtype=torch.int64)
    value = env_loop_penalty(f, y_t, envs_t, num_envs)
    (grad,) = torch.autograd.grad(value, [f])
    return float(value.detach()), grad.numpy()


def to_torch(*arrays: np.ndarray | Sequence[float]) -> tuple[torch.Tensor, ...]:
    """Converts numpy arrays to torch tensors: float32, or int64 for integer arrays (no copy if possible).

    Args:
      *arrays: numpy arrays.

    Returns:
      The tensors, in order.
    """
    out = []
    for a in arrays:
        a = np.asarray(a)
        dtype = np.int64 if np.issubdtype(a.dtype, np.integer) else np.float32
        out.append(torch.from_numpy(np.array(a, dtype=dtype)))  # a writable copy
    return tuple(out)
