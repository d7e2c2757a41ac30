"""RMIA on the audit samples, with the retrain references as reference models (numpy).

docs/design.md section 15. Members are the audit's train samples, non-members its test
samples (two folds serve as each other's population). Which models are references:

- the audited model and the retrain reference are attacked with the *second* retrain
  reference (the twin) as their reference model, so their figures compare like with like;
- the twin is attacked with the reference, which gives the reference-vs-reference floor;
- ``a`` is chosen by ``engine.audit.lira`` on a pair of LiRA shadow models (one attacked
  with the other, on samples IN for the first and OUT for the second), when the audit
  trains shadows. The reference and the twin are no such pair: both learned the same
  samples, so no sample is IN one and OUT of the other, and the AUC of one attacked with
  the other only falls or rises with ``a`` (it picked an end of the grid). Without
  shadows ``a = A_DEFAULT``, ML Privacy Meter's default offline ``a``;
- without a twin the audited model is attacked with the reference, and the reference
  gets no RMIA figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.audit import rmia, roc
from engine.audit.intervals import too_few
from engine.audit.outputs import AuditData, Outputs

A_DEFAULT = 0.3  # ML Privacy Meter's default offline a (its RMIA, Zarifzadeh et al.)
NO_PAIR = ("ML Privacy Meter's default: the two retrain references learned the same samples, "
           "so they are no IN/OUT pair to choose a on (run LiRA shadows to choose it)")
SUMMARY = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")
Scores = tuple[np.ndarray, np.ndarray]


def audit_rmia(outputs: dict[str, Outputs], data: AuditData, seed: int = 0,
               chosen: dict[str, Any] | None = None
               ) -> dict[str, tuple[dict[str, Any], Scores]]:
    """``{name: (metrics, (member scores, non-member scores))}`` per attacked model;
    ``chosen``: ``a`` chosen on a pair of shadow models (``{"a", "a_basis", ...}``)."""
    probs = {n: (rmia.probabilities(o.train_logits, o.class_ids, data.train_y),
                 rmia.probabilities(o.test_logits, o.class_ids, data.test_y))
             for n, o in outputs.items()}
    fold = rmia.halves(len(data.test_y), seed)
    if "twin" in probs:
        plan = {"model": "twin", "reference": "twin", "twin": "reference"}
    elif "reference" in probs:
        plan = {"model": "reference"}
    else:
        return {}
    info = {"a": A_DEFAULT, "a_chosen": False, "a_basis": NO_PAIR, **(chosen or {}),
            "gamma": rmia.GAMMA}
    out = {}
    for target, ref in plan.items():
        (p_m, p_n), (r_m, r_n) = probs[target], probs[ref]
        scores = rmia.attack(p_m, r_m, p_n, r_n, info["a"], fold)
        out[target] = ({**info, "reference_models": [ref], **figures(scores, data)}, scores)
    return out


def figures(scores: Scores, data: AuditData) -> dict[str, Any]:
    """AUC and TPR at 1% / 0.1% FPR overall and per class; a figure resting on too few
    samples is left out and ``omitted`` says why."""
    member, nonmember = scores
    out = summary(member, nonmember)
    out["per_class"] = {}
    for cid, name in data.names.items():
        own_m, own_n = member[data.train_y == cid], nonmember[data.test_y == cid]
        if len(own_m) or len(own_n):
            out["per_class"][name] = summary(own_m, own_n)
    return out


def summary(member: np.ndarray, nonmember: np.ndarray) -> dict[str, Any]:
    """The attack's figures that its sample counts support, and why the others are not."""
    omitted = {k: r for k in SUMMARY if (r := too_few(k, len(member), len(nonmember)))}
    out: dict[str, Any] = {"members": len(member), "non_members": len(nonmember)}
    if len(omitted) < len(SUMMARY):
        full = roc.summarize(member, nonmember)
        out.update({k: v for k, v in full.items() if k not in omitted})
    return {**out, "omitted": omitted} if omitted else out


def chart(scores: Scores) -> dict[str, Any]:
    return roc.chart_points(*roc.roc_curve(*scores))
