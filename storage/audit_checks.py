"""Pass / fail of an erasure audit against the workspace thresholds (storage/settings.py).

One place decides whether an audit passed, so the certificate and the period report agree.
Each check compares a figure of the audited model with the retrain reference (an absolute
gap, as the ``thresholds`` setting documents) or, for the forget accuracy, with a maximum.
A check whose figures are missing is "not assessed" (``passed`` None), never a pass.
"""

from __future__ import annotations

from typing import Any

# name, label, how the figure is read, kind of limit
CHECKS = (
    ("forget_accuracy_max", "Forget accuracy (training images)", "forget_accuracy", "max"),
    ("mia_efficacy_gap", "MIA efficacy, gap to reference", "mia_efficacy", "gap"),
    ("distinguishability_gap", "Forget distinguishability AUC, gap to reference",
     "forget_distinguishability_auc", "gap"),
    ("relearn_gap", "Relearn accuracy, largest gap to reference", "relearn", "gap"),
)


def figure(metrics: dict[str, Any] | None, key: str) -> float | None:
    """One audit figure: a rate, or for ``relearn`` the per-n accuracies (dict)."""
    if not isinstance(metrics, dict):
        return None
    if key == "forget_accuracy":
        value = (metrics.get("scorecard") or {}).get("forget_accuracy")
    else:
        value = metrics.get(key)
    return value if isinstance(value, int | float | dict) and not isinstance(value, bool) \
        else None


def relearn_gap(model: dict[str, Any] | None, reference: dict[str, Any] | None
                ) -> float | None:
    """The largest absolute gap in relearn accuracy over the shot counts both measured."""
    if not isinstance(model, dict) or not isinstance(reference, dict):
        return None
    shots = [n for n in model if n in reference]
    if not shots:
        return None
    return max(abs(float(model[n]) - float(reference[n])) for n in shots)


def check_audit(metrics: dict[str, Any] | None, thresholds: dict[str, float]
                ) -> dict[str, Any]:
    """``{"passed": bool | None, "checks": [...]}``: failed if any check fails, passed when
    every check was assessed and passed, None (not assessed) otherwise."""
    reference = (metrics or {}).get("reference")
    checks = [_check(name, label, key, kind, metrics, reference, thresholds)
              for name, label, key, kind in CHECKS if name in thresholds]
    verdicts = [c["passed"] for c in checks]
    if any(v is False for v in verdicts):
        passed: bool | None = False
    elif verdicts and all(v is True for v in verdicts):
        passed = True
    else:
        passed = None
    return {"passed": passed, "checks": checks}


def _check(name: str, label: str, key: str, kind: str, metrics: dict[str, Any] | None,
           reference: dict[str, Any] | None, thresholds: dict[str, float]) -> dict[str, Any]:
    limit = float(thresholds[name])
    value, ref = figure(metrics, key), figure(reference, key)
    if kind == "max":
        measured = value if isinstance(value, int | float) else None
    elif key == "relearn":
        measured = relearn_gap(value, ref)
    else:
        numbers = isinstance(value, int | float) and isinstance(ref, int | float)
        measured = abs(float(value) - float(ref)) if numbers else None
    passed = None if measured is None else bool(measured <= limit + 1e-12)
    return {"name": name, "label": label, "measured": measured, "limit": limit,
            "kind": kind, "passed": passed}


def verdict_word(passed: bool | None) -> str:
    """'passed', 'FAILED' or 'not assessed'."""
    return {True: "passed", False: "FAILED", None: "not assessed"}[passed]
