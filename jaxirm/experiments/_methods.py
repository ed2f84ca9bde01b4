"""The method list shared by the experiments that reproduce the OOD-TV paper's tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jaxirm import solvers
from jaxirm.experiments._registry import Method, PaperEntry
from jaxirm.losses import bce_with_logits

__all__ = ["paper_methods"]


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
    eiil: bool = True,
    lff_hparams: Mapping[str, float] | None = None,
    tiva_hparams: Mapping[str, float] | None = None,
    tiva_envs: int = 2,
    tiva_hidden: int = 16,
) -> tuple[Method, ...]:
    """ERM, IRM, IRM-TV-ℓ1, ZIN, Minimax-TV-ℓ1, the four OOD-TV variants, EIIL, LfF and TIVA.

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
      eiil: include EIIL (1000 reference + 1000 inference steps, then IRM with a 1000-step warm-up).
      lff_hparams: hyperparameters of LfF (``lr``, ``l2``, ``q``, ``ema``); None: no LfF row (a
        regression task, where its generalized cross-entropy is undefined).
      tiva_hparams: hyperparameters of TIVA (``lr``, ``l2``, ``lam``, ``anneal_steps``, ``stg_reg``); None:
        no TIVA row.
      tiva_envs: number of environments TIVA's ρ infers.
      tiva_hidden: hidden width of TIVA's ρ.

    Returns:
      The methods.
    """
    paper = dict(paper or {})
    ood_hparams = dict(hparams if ood_hparams is None else ood_hparams)

    def entry(name: str) -> PaperEntry | None:
        return PaperEntry(*paper[name], source=source) if name in paper else None

    def irm(penalty: str):
        return lambda: solvers.irm(model, penalty=penalty, num_envs=num_envs, loss=loss)

    def minimax(penalty: str):
        return lambda: solvers.minimax(
            model, penalty=penalty, num_envs=infer_envs, infer_hidden=infer_hidden, loss=loss
        )

    def ood(base: str, penalty: str):
        envs = num_envs if base == "irm" else infer_envs
        return lambda: solvers.ood_tv(
            model,
            base=base,
            penalty=penalty,
            num_envs=envs,
            lam_hidden=lam_hidden,
            infer_hidden=infer_hidden,
            loss=loss,
        )

    methods = [
        Method("ERM", lambda: solvers.erm(model, loss=loss), {"lr": hparams["lr"], "l2": hparams["l2"]}),
        Method("IRM", irm("tv_l2"), hparams, entry("IRM")),
        Method("IRM-TV-l1", irm("tv_l1"), hparams, entry("IRM-TV-l1")),
        Method("ZIN", minimax("tv_l2"), hparams, entry("ZIN")),
        Method("Minimax-TV-l1", minimax("tv_l1"), hparams, entry("Minimax-TV-l1")),
        Method("OOD-TV-IRM-l1", ood("irm", "tv_l1"), ood_hparams, entry("OOD-TV-IRM-l1")),
        Method("OOD-TV-IRM-l2", ood("irm", "tv_l2"), ood_hparams, entry("OOD-TV-IRM-l2")),
        Method("OOD-TV-Minimax-l1", ood("minimax", "tv_l1"), ood_hparams, entry("OOD-TV-Minimax-l1")),
        Method("OOD-TV-Minimax-l2", ood("minimax", "tv_l2"), ood_hparams, entry("OOD-TV-Minimax-l2")),
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
    return tuple(methods)
