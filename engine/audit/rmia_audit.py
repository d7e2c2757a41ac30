"""RMIA on the audit samples, with the retrain references as reference models (numpy).

docs/design.md section 15. Members are the audit's train samples, non-members its test
samples (two folds serve as each other's population). Which models are references:

- the audited model and the retrain reference are attacked with the *second* retrain
  reference (the twin) as their reference model, so their figures compare like with like;
- the twin is attacked with the reference, which gives the reference-vs-reference floor;
- ``a`` is chosen on that held-out pair (the reference attacked with the twin);
- without a twin the audited model is attacked with the reference and ``a = A_DEFAULT``
  (nothing to choose it on), and the reference gets no RMIA figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.audit import rmia, roc
from engine.audit.intervals import too_few
from engine.audit.outputs import AuditData, Outputs

A_DEFAULT = 0.3
SUMMARY = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")
Scores = tuple[np.ndarray, np.ndarray]


def audit_rmia(outputs: dict[str, Outputs], data: AuditData, seed: int = 0
               ) -> dict[str, tuple[dict[str, Any], Scores]]:
    """``{name: (metrics, (member scores, non-member scores))}`` per attacked model."""
    probs = {n: (rmia.probabilities(o.train_logits, o.class_ids, data.train_y),
                 rmia.probabilities(o.test_logits, o.class_ids, data.test_y))
             for n, o in outputs.items()}
    fold = rmia.halves(len(data.test_y), seed)
    if "twin" in probs:
        plan = {"model": "twin", "reference": "twin", "twin": "reference"}
        a, chosen = _choose(probs["reference"], probs["twin"], fold), True
    elif "reference" in probs:
        plan, a, chosen = {"model": "reference"}, A_DEFAULT, False
    else:
        return {}
    out = {}
    for target, ref in plan.items():
        (p_m, p_n), (r_m, r_n) = probs[target], probs[ref]
        scores = rmia.attack(p_m, r_m, p_n, r_n, a, fold)
        info = {"a": a, "a_chosen": chosen, "gamma": rmia.GAMMA, "reference_models": [ref]}
        out[target] = ({**info, **figures(scores, data)}, scores)
    return out


def offline_a(outputs: dict[str, Outputs], data: AuditData, seed: int = 0) -> float:
    """``a`` chosen on the pair of retrain references, ``A_DEFAULT`` without a pair."""
    if not {"reference", "twin"} <= set(outputs):
        return A_DEFAULT
    probs = [(rmia.probabilities(outputs[n].train_logits, outputs[n].class_ids, data.train_y),
              rmia.probabilities(outputs[n].test_logits, outputs[n].class_ids, data.test_y))
             for n in ("reference", "twin")]
    return _choose(probs[0], probs[1], rmia.halves(len(data.test_y), seed))


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


def _choose(target: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray],
            fold: np.ndarray) -> float:
    return rmia.choose_a(target[0], ref[0], target[1], ref[1], fold)
