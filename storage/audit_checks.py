"""Pass / fail of an erasure audit against the workspace thresholds (storage/settings.py).

One place decides whether an audit passed, so the certificate and the period report agree.
Each check compares a figure of the audited model with the retrain reference (an absolute
gap, as the ``thresholds`` setting documents) or, for the forget accuracy, with a maximum.
The MIA check judges the label-free top-1 figure when SalUn's is degenerate.
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


TOP1_LABEL = "MIA efficacy (label-free top-1; SalUn's is degenerate), gap to reference"


def mia_key(metrics: dict[str, Any] | None, reference: dict[str, Any] | None) -> str:
    """Which MIA figure to judge: SalUn's ``mia_efficacy``, or ``mia_efficacy_top1`` when
    SalUn's is degenerate (every forgotten sample alike, e.g. no logit column) in the
    model or the reference and both measured the top-1 figure."""
    parts = [p if isinstance(p, dict) else {} for p in (metrics, reference)]
    degenerate = any(p.get("mia_efficacy_degenerate") for p in parts)
    measured = all(isinstance(p.get("mia_efficacy_top1"), int | float) for p in parts)
    return "mia_efficacy_top1" if degenerate and measured else "mia_efficacy"


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
    if key == "mia_efficacy" and mia_key(metrics, reference) == "mia_efficacy_top1":
        key, label = "mia_efficacy_top1", TOP1_LABEL
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


# name, label, path in the guard metrics, kind of limit ("max", "min", "ms")
GUARD_CHECKS = (
    ("knowledge_gap_max", "Knowledge after the guard, above the ignorant reference",
     ("knowledge", "gap_to_ignorant"), "max"),
    ("identical_unflagged_min", "Unflagged answers identical to the unguarded model",
     ("side_effects", "identical_unflagged"), "min"),
    ("tpr_forget_min", "Classifier TPR on held-out forget prompts",
     ("classifier", "tpr_forget"), "min"),
    ("fpr_general_max", "Classifier FPR on held-out general prompts",
     ("classifier", "fpr_general"), "max"),
    ("fpr_neighbour_max", "Classifier FPR on held-out neighbouring prompts",
     ("classifier", "fpr_neighbour"), "max"),
    ("classifier_p95_ms_max", "Classifier latency, 95th percentile",
     ("classifier", "latency_ms", "p95"), "ms"),
)


HELD_OUT_BASIS = "held-out"  # engine/guard/evaluate.py: every figure on held-out prompts
MIXED_PARTS = ("knowledge", "side_effects")  # scored training prompts too before that
MIXED_NOTE = ("not assessed: this evaluation predates held-out scoring and counted the "
              "rule's training prompts too; run `guard eval` again")


def held_out(metrics: dict[str, Any] | None) -> bool:
    """Whether a `guard eval` scored held-out prompts only (evaluations stored before
    ``basis`` existed scored the training prompts as well for knowledge and side effects)."""
    return isinstance(metrics, dict) and metrics.get("basis") == HELD_OUT_BASIS


def check_guard_audit(metrics: dict[str, Any] | None, thresholds: dict[str, float]
                      ) -> dict[str, Any]:
    """``check_audit`` for a forget-rule audit (`guard eval`): the same verdict rules, with
    minimums (``min``), maximums (``max``) and a latency maximum in milliseconds (``ms``).
    A figure of an older evaluation that counted training prompts is not assessed."""
    checks = []
    for name, label, path, kind in GUARD_CHECKS:
        if name not in thresholds:
            continue
        mixed = path[0] in MIXED_PARTS and not held_out(metrics)
        limit, measured = float(thresholds[name]), None if mixed else _at(metrics, path)
        passed = None if measured is None else bool(
            measured >= limit - 1e-12 if kind == "min" else measured <= limit + 1e-12)
        checks.append({"name": name, "label": label, "measured": measured, "limit": limit,
                       "kind": kind, "passed": passed, **({"note": MIXED_NOTE} if mixed else {})})
    verdicts = [c["passed"] for c in checks]
    passed: bool | None = (False if any(v is False for v in verdicts) else
                           True if verdicts and all(v is True for v in verdicts) else None)
    return {"passed": passed, "checks": checks}


def _at(obj: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return float(obj) if isinstance(obj, int | float) and not isinstance(obj, bool) else None
