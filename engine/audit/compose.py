"""The stored shapes: the metrics object (docs/design.md section 5) and the chart data.

metrics (AuditRun.metrics; ``audit --json`` adds ``audit_run``), every rate in [0, 1]:
  scorecard: forget_accuracy (forget-train), retain_accuracy (retain-train),
             test_accuracy (retained-class test), run_time_s (forget latency, or the
             reference's training time; None when unknown),
             gap_to_reference {the three accuracies: model - reference} (with a reference)
  mia_efficacy: float (SalUn: SVC on true-label confidence)
  mia_efficacy_degenerate: bool (every forget sample has the same true-label confidence,
             e.g. 0 for a class with no logit column: mia_efficacy is then 0 or 1 and
             carries no information)
  mia_efficacy_top1: float (the same SVC on label-free (top-1 confidence, entropy))
  threshold_attacks: {loss|confidence|entropy: {auc, tpr_at_1pct_fpr, tpr_at_0_1pct_fpr,
                      per_class: {class name: {auc, tpr_at_1pct_fpr, tpr_at_0_1pct_fpr}}}}
  forget_distinguishability_auc: float (worst case over the three attacks, >= 0.5)
  linear_probe: {forget_accuracy, retain_accuracy, per_class: {class name: accuracy}}
  relearn: {"1": accuracy, "5": ..., "20": ...} or None when not run
  lira: {k, auc, tpr_at_1pct_fpr, tpr_at_0_1pct_fpr, forget_auc, retain_auc} (when run)
  erasure: "exact" | "isolated" | "approximate" (storage.erasure_kinds; audits stored
           before it say "exact" for isolated / frozen models)
  erasure_statement: the erasure kind in plain words with the measured residual
  reference: the same keys (erasure "exact", no gap, no nested reference) (when run)
curves (AuditRun.curves), ``which`` = "model" / "reference":
  classes {name: id}, forgotten [names], attacks [names],
  per_class_accuracy {before, after, reference: {class name: test accuracy}},
  roc / forget_roc {which: {attack: {linear|log: {fpr: [..], tpr: [..]}}}},
  histograms {which: {all|forget: {attack: {edges, members, non_members}}}},
  distinguishability {which: {attack: auc}},
  relearn {shots: [1, 5, 20], which: {mean: {n: acc}, runs: {n: [acc per class, seed]}}},
  lira {which: {linear|log: {fpr, tpr}}} (when run).
"""

from __future__ import annotations

from typing import Any

from engine.audit.relearn import SHOTS
from engine.audit.scores import ATTACKS
from engine.audit.statement import audit_statement
from storage.erasure_kinds import EXACT

SCORECARD = ("forget_accuracy", "retain_accuracy", "test_accuracy")
_AFTER = {"model": "after"}  # per-class accuracy: before / after the forget, reference


def assemble(run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, curves)`` from the per-model parts of an audit run."""
    metrics = _metrics(run.metrics["model"], run.facts["erasure_kind"], run.opts.relearn)
    if "reference" in run.metrics:
        ref = _metrics(run.metrics["reference"], EXACT, run.opts.relearn)
        metrics["reference"] = ref
        metrics["scorecard"]["gap_to_reference"] = {
            k: metrics["scorecard"][k] - ref["scorecard"][k] for k in SCORECARD}
    metrics["erasure_statement"] = audit_statement(
        metrics, run.facts["config"].get("mode", ""), bool(run.facts.get("scrub")))
    return metrics, _curves(run)


def _metrics(part: dict[str, Any], erasure: str, relearn: bool) -> dict[str, Any]:
    out = {k: part[k] for k in ("scorecard", "mia_efficacy", "mia_efficacy_degenerate",
                                "mia_efficacy_top1", "threshold_attacks",
                                "forget_distinguishability_auc", "linear_probe")}
    out["relearn"] = part.get("relearn") if relearn else None
    for key in ("lira", "rmia", "statistics", "floor"):  # section 15: when measured
        if key in part:
            out[key] = part[key]
    out["erasure"] = erasure
    return out


def _curves(run: Any) -> dict[str, Any]:
    names = run.data.names
    parts = {n: run.curves[n] for n in ("model", "reference") if n in run.curves}
    twin = run.curves.get("twin")  # the second reference: the noise band on the charts
    curves: dict[str, Any] = {
        "classes": {name: cid for cid, name in names.items()},
        "forgotten": [names[c] for c in run.facts["forgotten"]],
        "attacks": list(ATTACKS),
        "per_class_accuracy": {"before": run.facts["before"],
                               **{_AFTER.get(n, n): p["per_class_accuracy"]
                                  for n, p in parts.items()}},
    }
    for key in ("roc", "forget_roc", "histograms", "distinguishability", "lira", "rmia"):
        if parts and all(key in p for p in parts.values()):
            curves[key] = {n: p[key] for n, p in parts.items()}
            if twin and key in twin and key in ("roc", "forget_roc", "rmia"):
                curves[key]["twin"] = twin[key]
    if run.opts.relearn:
        both = {**parts, **({"twin": twin} if twin and "relearn" in twin else {})}
        curves["relearn"] = {"shots": list(SHOTS), **{n: p["relearn"] for n, p in both.items()}}
    if twin:
        curves["per_class_accuracy"]["twin"] = twin["per_class_accuracy"]
    return curves
