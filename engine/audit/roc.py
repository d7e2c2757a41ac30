"""ROC curves, AUC, TPR at a fixed FPR and chart-sized curve data (numpy; no torch).

Convention: a higher score means "member"; ``members`` are the positives. Tied scores
form one ROC point, so a constant score gives the chance diagonal (AUC 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOG_FLOOR = 1e-5  # smallest rate shown on log-log charts
LINEAR_POINTS = 201
LOG_POINTS = 121
HIST_BINS = 30


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` from (0, 0) to (1, 1), one point per distinct threshold."""
    members, nonmembers = _finite(members), _finite(nonmembers)
    if len(members) == 0 or len(nonmembers) == 0:
        raise ValueError("an ROC curve needs at least one member and one non-member")
    scores = np.concatenate([members, nonmembers])
    is_member = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_member = scores[order], is_member[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    tp = np.cumsum(is_member)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    tpr = np.r_[0.0, tp / len(members)]
    fpr = np.r_[0.0, fp / len(nonmembers)]
    return fpr, tpr


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids: ties count half)."""
    return float(np.clip(np.trapezoid(tpr, fpr), 0.0, 1.0))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The best TPR among thresholds whose FPR is at most ``target``."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def summarize(members: np.ndarray, nonmembers: np.ndarray) -> dict[str, float]:
    """AUC and TPR at 1% and 0.1% FPR of one attack."""
    fpr, tpr = roc_curve(members, nonmembers)
    return {"auc": auc(fpr, tpr), "tpr_at_1pct_fpr": tpr_at_fpr(fpr, tpr, 0.01),
            "tpr_at_0_1pct_fpr": tpr_at_fpr(fpr, tpr, 0.001)}


def step_tpr(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """TPR of the ROC step function at each FPR in ``grid`` (best threshold with FPR <= x)."""
    idx = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    running_max = np.maximum.accumulate(tpr)
    return running_max[np.clip(idx, 0, len(tpr) - 1)]


def chart_points(fpr: np.ndarray, tpr: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Downsampled ROC for charts: ``linear`` on a uniform FPR grid, ``log`` on a
    log-spaced grid from ``LOG_FLOOR`` with rates floored at ``LOG_FLOOR``."""
    linear = np.linspace(0.0, 1.0, LINEAR_POINTS)
    logs = np.geomspace(LOG_FLOOR, 1.0, LOG_POINTS)
    return {"linear": {"fpr": _round(linear), "tpr": _round(step_tpr(fpr, tpr, linear))},
            "log": {"fpr": _round(logs),
                    "tpr": _round(np.maximum(step_tpr(fpr, tpr, logs), LOG_FLOOR))}}


def histogram(members: np.ndarray, nonmembers: np.ndarray, bins: int = HIST_BINS
              ) -> dict[str, Any]:
    """Member vs non-member score counts on shared bin edges."""
    members, nonmembers = _finite(members), _finite(nonmembers)
    both = np.concatenate([members, nonmembers])
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    return {"edges": _round(edges),
            "members": np.histogram(members, edges)[0].astype(int).tolist(),
            "non_members": np.histogram(nonmembers, edges)[0].astype(int).tolist()}


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        raise ValueError("attack scores must be finite")
    return values


def _round(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64), 6)]
