"""The figures of one model on the audit samples (numpy / scikit-learn; no torch).

``measure`` turns a model's ``Outputs`` into the section-5 metrics that need no extra
training (scorecard, MIA-efficacy and its label-free top-1 variant, threshold attacks,
forget distinguishability, linear probe) and the chart data behind them. Members are
the recorded train samples of every class (the forgotten ones included), non-members the
test samples: the same sets for the audited model and for its retrain reference, so
their figures compare directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.audit import roc
from engine.audit.attacks import (
    distinguishability,
    is_degenerate,
    svc_calls,
    threshold_attacks,
)
from engine.audit.outputs import AuditData, Outputs
from engine.audit.probe import linear_probe
from engine.audit.scores import (
    ATTACKS,
    label_free_features,
    membership_scores,
    sample_stats,
)


def measure(out: Outputs, data: AuditData, seed: int = 0,
            samples: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, curves)`` of one model; ``data.forgotten`` must not be empty.

    ``samples``, when given, receives the per-sample outcomes behind the figures (the
    efficacy SVC's calls, the probe's hits) for the intervals (``engine.audit.evidence``)."""
    samples = {} if samples is None else samples
    if not data.forgotten:
        raise ValueError("an erasure audit needs at least one forgotten class")
    train = sample_stats(out.train_logits, out.class_ids, data.train_y)
    test = sample_stats(out.test_logits, out.class_ids, data.test_y)
    members, nonmembers = membership_scores(train), membership_scores(test)
    f_tr, f_te = np.isin(data.train_y, data.forgotten), np.isin(data.test_y, data.forgotten)
    worst, per_attack = distinguishability(_subset(members, f_tr), _subset(nonmembers, f_te))
    metrics = {
        "scorecard": scorecard(out, data),
        **mia_figures(out, train["confidence"], test["confidence"], f_tr, f_te, seed,
                      samples),
        "threshold_attacks": threshold_attacks(members, nonmembers, data.train_y,
                                               data.test_y, data.names),
        "forget_distinguishability_auc": worst,
        "linear_probe": linear_probe(out.train_features, data.train_y, out.test_features,
                                     data.test_y, data.forgotten, data.names, seed,
                                     samples),
    }
    curves = {"roc": _roc_points(members, nonmembers),
              "forget_roc": _roc_points(_subset(members, f_tr), _subset(nonmembers, f_te)),
              "histograms": {
                  "all": {a: roc.histogram(members[a], nonmembers[a]) for a in ATTACKS},
                  "forget": {a: roc.histogram(members[a][f_tr], nonmembers[a][f_te])
                             for a in ATTACKS}},
              "distinguishability": per_attack,
              "per_class_accuracy": per_class_accuracy(out, data)}
    return metrics, curves


def mia_figures(out: Outputs, train_conf: np.ndarray, test_conf: np.ndarray,
                f_tr: np.ndarray, f_te: np.ndarray, seed: int,
                samples: dict[str, Any] | None = None) -> dict[str, Any]:
    """SalUn's MIA-efficacy (true-label confidence), whether it is degenerate (every
    forget sample has the same confidence, e.g. 0 for a class with no column), and the
    label-free figure on (top-1 confidence, entropy)."""
    train_x, test_x = label_free_features(out.train_logits), label_free_features(
        out.test_logits)
    salun = svc_calls(train_conf[~f_tr, None], test_conf[~f_te, None], train_conf[f_tr, None],
                      seed)
    top1 = svc_calls(train_x[~f_tr], test_x[~f_te], train_x[f_tr], seed, scale=True)
    if samples is not None:
        samples.update(mia_efficacy=salun, mia_efficacy_top1=top1)
    return {"mia_efficacy": float(salun.mean()),
            "mia_efficacy_degenerate": is_degenerate(train_conf[f_tr]),
            "mia_efficacy_top1": float(top1.mean())}


def predictions(logits: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """Predicted class ids (-1 when the model has no class left)."""
    if not class_ids:
        return np.full(len(logits), -1)
    return np.asarray(class_ids)[np.asarray(logits).argmax(axis=1)]


def scorecard(out: Outputs, data: AuditData) -> dict[str, float]:
    """Accuracy on forget-train, retain-train, and retained-class test samples."""
    hit_tr = predictions(out.train_logits, out.class_ids) == data.train_y
    hit_te = predictions(out.test_logits, out.class_ids) == data.test_y
    f_tr, f_te = np.isin(data.train_y, data.forgotten), np.isin(data.test_y, data.forgotten)
    return {"forget_accuracy": _mean(hit_tr[f_tr]), "retain_accuracy": _mean(hit_tr[~f_tr]),
            "test_accuracy": _mean(hit_te[~f_te])}


def per_class_accuracy(out: Outputs, data: AuditData) -> dict[str, float]:
    """Test accuracy per class name (a forgotten class scores 0: it has no column)."""
    hit = predictions(out.test_logits, out.class_ids) == data.test_y
    return {name: _mean(hit[data.test_y == cid]) for cid, name in data.names.items()}


def _roc_points(members: dict[str, np.ndarray], nonmembers: dict[str, np.ndarray]
                ) -> dict[str, Any]:
    return {a: roc.chart_points(*roc.roc_curve(members[a], nonmembers[a])) for a in ATTACKS}


def _subset(scores: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in scores.items()}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0
