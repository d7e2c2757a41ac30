"""The stored shapes: the metrics object (DESIGN.md section 5) and the chart data."""

from __future__ import annotations

from typing import Any

from engine.audit.relearn import SHOTS
from engine.audit.scores import ATTACKS

SCORECARD = ("forget_accuracy", "retain_accuracy", "test_accuracy")
_AFTER = {"model": "after"}  # per-class accuracy: before / after the forget, reference


def assemble(run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, curves)`` from the per-model parts of an audit run."""
    metrics = _metrics(run.metrics["model"], run.facts["erasure_kind"], run.opts.relearn)
    if "reference" in run.metrics:
        ref = _metrics(run.metrics["reference"], "exact", run.opts.relearn)
        metrics["reference"] = ref
        metrics["scorecard"]["gap_to_reference"] = {
            k: metrics["scorecard"][k] - ref["scorecard"][k] for k in SCORECARD}
    return metrics, _curves(run)


def _metrics(part: dict[str, Any], erasure: str, relearn: bool) -> dict[str, Any]:
    out = {k: part[k] for k in ("scorecard", "mia_efficacy", "threshold_attacks",
                                "forget_distinguishability_auc", "linear_probe")}
    out["relearn"] = part.get("relearn") if relearn else None
    if "lira" in part:
        out["lira"] = part["lira"]
    out["erasure"] = erasure
    return out


def _curves(run: Any) -> dict[str, Any]:
    names = run.data.names
    parts = {n: run.curves[n] for n in ("model", "reference") if n in run.curves}
    curves: dict[str, Any] = {
        "classes": {name: cid for cid, name in names.items()},
        "forgotten": [names[c] for c in run.facts["forgotten"]],
        "attacks": list(ATTACKS),
        "per_class_accuracy": {"before": run.facts["before"],
                               **{_AFTER.get(n, n): p["per_class_accuracy"]
                                  for n, p in parts.items()}},
    }
    for key in ("roc", "forget_roc", "histograms", "distinguishability", "lira"):
        if all(key in p for p in parts.values()):
            curves[key] = {n: p[key] for n, p in parts.items()}
    if run.opts.relearn:
        curves["relearn"] = {"shots": list(SHOTS), **{n: p["relearn"] for n, p in parts.items()}}
    return curves
