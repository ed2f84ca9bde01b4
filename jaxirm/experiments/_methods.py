"""The method list shared by the experiments that reproduce the OOD-TV paper's tables, and the words their
notes use for hyperparameters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from jaxirm import solvers
from jaxirm.experiments._registry import Method, PaperEntry
from jaxirm.losses import bce_with_logits

__all__ = ["paper_methods", "describe_hparams", "released_maps_note", "EIIL_NOTE"]

EIIL_NOTE = "EIIL: 1000 reference + 1000 inference steps, then IRM with a 1000-step warm-up"
"""EIIL's schedule in `paper_methods`, as the notes state it."""


def paper_methods(
    model,
    hparams: Mapping[str, float],
    *,
    ood_hparams: Mapping[str, float] | None = None,
    paper: Mapping[str, tuple[float, float, float, float]] | None = None,
    source: str = "",
    num_envs: int = 2,
    infer_envs: int = 2,
    infer_hidden: int = 16,
    lam_hidden: int = 16,
    loss: Callable = bce_with_logits,
    vrex: bool = False,
    eiil: bool = True,
    lff_hparams: Mapping[str, float] | None = None,
    tiva_hparams: Mapping[str, float] | None = None,
    tiva_envs: int = 2,
    tiva_hidden: int = 16,
    names: Sequence[str] | None = None,
) -> tuple[Method, ...]:
    """ERM, IRM, IRM-TV-ℓ1, (VREx,) ZIN, Minimax-TV-ℓ1, the four OOD-TV variants, EIIL, LfF and TIVA.

    Args:
      model: Φ (a flax module).
      hparams: hyperparameters of the fixed-λ methods (``lr``, ``l2``, ``lam``, ``anneal_steps``); ERM takes
        its ``lr`` and ``l2``.
      ood_hparams: hyperparameters of the OOD-TV methods (default ``hparams``).
      paper: ``{method: (mean, mean_std, worst, worst_std)}`` published results.
      source: where the published results come from.
      num_envs: number of ground-truth training environments (IRM-type methods).
      infer_envs: number of environments ρ(z) infers (ZIN, Minimax, OOD-TV-Minimax).
      infer_hidden: hidden width of ρ.
      lam_hidden: hidden width of the λ network of OOD-TV.
      loss: per-example loss.
      vrex: include VREx (IRM's solver with the variance penalty) after IRM-TV-ℓ1.
      eiil: include EIIL (1000 reference + 1000 inference steps, then IRM with a 1000-step warm-up).
      lff_hparams: hyperparameters of LfF (``lr``, ``l2``, ``q``, ``ema``); None: no LfF row (a
        regression task, where its generalized cross-entropy is undefined).
      tiva_hparams: hyperparameters of TIVA (``lr``, ``l2``, ``lam``, ``anneal_steps``, ``stg_reg``); None:
        no TIVA row.
      tiva_envs: number of environments TIVA's ρ infers.
      tiva_hidden: hidden width of TIVA's ρ.
      names: keep only these methods (in the order above); None: all.

    Returns:
      The methods.
    """
    paper = dict(paper or {})
    ood_hparams = dict(hparams if ood_hparams is None else ood_hparams)

    def entry(name: str) -> PaperEntry | None:
        return PaperEntry(*paper[name], source=source) if name in paper else None

    # The two norms of a game are one solver whose norm is data (``penalty="tv"``, the hyperparameter
    # ``tv_norm``), built by one callable: IRM and IRM-TV-ℓ1, ZIN and Minimax-TV-ℓ1, and each OOD-TV pair
    # share one compiled sweep program (`Method.build`).
    @functools.cache
    def tv_build(kind: str) -> Callable[[], solvers.Solver]:
        if kind == "irm":
            make = functools.partial(solvers.irm, penalty="tv", num_envs=num_envs)
        elif kind == "minimax":
            make = functools.partial(
                solvers.minimax, penalty="tv", num_envs=infer_envs, infer_hidden=infer_hidden
            )
        else:
            base = kind.removeprefix("ood_tv_")
            make = functools.partial(
                solvers.ood_tv,
                base=base,
                penalty="tv",
                num_envs=num_envs if base == "irm" else infer_envs,
                lam_hidden=lam_hidden,
                infer_hidden=infer_hidden,
            )
        return functools.cache(lambda: make(model, loss=loss))

    def tv(name: str, kind: str, norm: int, base_hparams: Mapping[str, float]) -> Method:
        return Method(name, tv_build(kind), {**base_hparams, "tv_norm": float(norm)}, entry(name))

    methods = [
        Method("ERM", lambda: solvers.erm(model, loss=loss), {"lr": hparams["lr"], "l2": hparams["l2"]}),
        tv("IRM", "irm", 2, hparams),
        tv("IRM-TV-l1", "irm", 1, hparams),
    ]
    if vrex:
        vrex_solver = lambda: solvers.irm(model, penalty="vrex", num_envs=num_envs, loss=loss)  # noqa: E731
        methods.append(Method("VREx", vrex_solver, hparams, entry("VREx")))
    methods += [
        tv("ZIN", "minimax", 2, hparams),
        tv("Minimax-TV-l1", "minimax", 1, hparams),
        tv("OOD-TV-IRM-l1", "ood_tv_irm", 1, ood_hparams),
        tv("OOD-TV-IRM-l2", "ood_tv_irm", 2, ood_hparams),
        tv("OOD-TV-Minimax-l1", "ood_tv_minimax", 1, ood_hparams),
        tv("OOD-TV-Minimax-l2", "ood_tv_minimax", 2, ood_hparams),
    ]
    if eiil:
        methods.append(
            Method(
                "EIIL",
                lambda: solvers.eiil(model, reference_steps=1000, infer_steps=1000, loss=loss),
                {**hparams, "anneal_steps": 1000.0},
                entry("EIIL"),
            )
        )
    if lff_hparams is not None:
        methods.append(Method("LfF", lambda: solvers.lff(model, loss=loss), lff_hparams, entry("LfF")))
    if tiva_hparams is not None:
        methods.append(
            Method(
                "TIVA",
                lambda: solvers.tiva(model, num_envs=tiva_envs, infer_hidden=tiva_hidden, loss=loss),
                tiva_hparams,
                entry("TIVA"),
            )
        )
    if names is not None:
        unknown = set(names) - {m.name for m in methods}
        if unknown:
            there = [m.name for m in methods]
            raise ValueError(f"names: no such method {sorted(unknown)}; there are {there}")
        methods = [m for m in methods if m.name in names]
    return tuple(methods)


def _number(value: float) -> str:
    return f"{float(value):.6g}"


def describe_hparams(hparams: Mapping[str, float], *, steps: int | None = None) -> str:
    """The words a table note uses for a hyperparameter dict (so notes never restate a dict by hand).

    ``lr`` and ``l2`` first, then the penalty weight ``lam`` with its warm-up ``anneal_steps``, then any other
    name as it is; ``steps`` (the run length) last.

    Args:
      hparams: ``{name: value}``, e.g. a `Method`'s ``hparams``.
      steps: training steps, appended when given.

    Returns:
      One phrase.

    Examples:
      >>> describe_hparams({"lr": 0.005, "l2": 0.001, "lam": 1000.0, "anneal_steps": 5000.0}, steps=5901)
      'Adam lr 0.005, L2 0.001, lambda 1000 after 5000 warm-up steps, 5901 steps'
      >>> describe_hparams({"lr": 1e-3, "l2": 0.0, "lam": 1000.0, "anneal_steps": 0.0})
      'Adam lr 0.001, L2 0, lambda 1000 from step 0'
    """
    rest = dict(hparams)
    parts = [f"Adam lr {_number(rest.pop('lr'))}"] if "lr" in rest else []
    parts += [f"L2 {_number(rest.pop('l2'))}"] if "l2" in rest else []
    lam, anneal = rest.pop("lam", None), rest.pop("anneal_steps", None)
    warm_up = f"after {anneal:g} warm-up steps" if anneal else "from step 0"
    if lam is not None:
        parts.append(f"lambda {_number(lam)}" + ("" if anneal is None else f" {warm_up}"))
    elif anneal is not None:
        parts.append(f"{anneal:g} warm-up steps")
    parts += [f"{name} {_number(value)}" for name, value in rest.items()]
    parts += [f"{steps} steps"] if steps is not None else []
    return ", ".join(parts)


def released_maps_note(
    data: str,
    steps: int,
    *,
    lff: Mapping[str, float] | None = None,
    tiva: Mapping[str, float] | None = None,
    tiva_envs: int = 2,
    tiva_hidden: int = 16,
) -> str:
    """The note on the LfF and TIVA rows, which use their own released parameter maps.

    Args:
      data: the data set, as the note names it (``"logit_z"``, ``"house-price"``).
      steps: training steps.
      lff: LfF's hyperparameters (None: no LfF row).
      tiva: TIVA's hyperparameters (None: no TIVA row).
      tiva_envs: number of environments TIVA infers.
      tiva_hidden: hidden width of TIVA's ρ.
    """
    rows = {}
    if lff is not None:
        rows["LfF"] = f"{describe_hparams(lff)}, GCE q 0.7, loss EMA 0.7"
    if tiva is not None:
        rows["TIVA"] = (
            f"{describe_hparams(tiva)} (one lr for all three players), gate sigma 1, gate sparsity 0.001, "
            f"{tiva_envs} environments inferred from (1 - gates) x [x, z] by a rho of {tiva_hidden} hidden "
            "units"
        )
    if len(rows) == 1:
        ((who, text),) = rows.items()
        return f"{who}: its released {data} parameter map, {steps} steps: {text}"
    text = "; ".join(f"{who} {text}" for who, text in rows.items())
    return f"{' and '.join(rows)}: their released {data} parameter maps, {steps} steps: {text}"
