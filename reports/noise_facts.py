"""What a certificate states about the audit's noise (docs/design.md section 15).

``noise_facts`` reads the ``statistics`` object an audit stored (engine/audit/verdicts.py)
and keeps what the certificate quotes: the overall verdict, each headline figure with its
95% interval, gap, floor and verdict, and the verdict of every class with the number of
samples it rests on. Audits stored before the statistics existed give None: the
certificate then says no interval was measured, never a verdict it cannot show.
"""

from __future__ import annotations

from typing import Any

HEADLINE = (  # figure key, label
    ("scorecard.forget_accuracy", "Forget accuracy (training images)"),
    ("scorecard.retain_accuracy", "Retained classes, training accuracy"),
    ("scorecard.test_accuracy", "Retained classes, test accuracy"),
    ("mia_efficacy_top1", "MIA efficacy, label-free top-1"),
    ("mia_efficacy", "MIA efficacy, SalUn"),
    ("forget_distinguishability_auc", "Forget distinguishability AUC"),
    ("threshold_attacks.loss.auc", "Loss attack AUC"),
    ("threshold_attacks.loss.tpr_at_1pct_fpr", "Loss attack TPR at 1% FPR"),
    ("threshold_attacks.loss.tpr_at_0_1pct_fpr", "Loss attack TPR at 0.1% FPR"),
    ("rmia.auc", "RMIA AUC"),
    ("rmia.tpr_at_1pct_fpr", "RMIA TPR at 1% FPR"),
    ("rmia.tpr_at_0_1pct_fpr", "RMIA TPR at 0.1% FPR"),
    ("lira.auc", "LiRA AUC"),
    ("lira.tpr_at_0_1pct_fpr", "LiRA TPR at 0.1% FPR"),
    ("lira.rmia.auc", "RMIA AUC with the LiRA shadows"),
    ("linear_probe.forget_accuracy", "Linear probe, erased class"),
    ("relearn.1", "Relearn accuracy, n = 1"),
    ("relearn.5", "Relearn accuracy, n = 5"),
    ("relearn.20", "Relearn accuracy, n = 20"),
)
KEEP = ("model", "model_ci", "reference", "gap", "gap_ci", "floor", "verdict", "beyond",
        "beyond_ci", "samples", "reason")


def noise_facts(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The certificate's ``noise`` object, or None for an audit without statistics."""
    stats = metrics.get("statistics")
    if not isinstance(stats, dict) or "figures" not in stats:
        return None
    method, verdict = stats.get("method") or {}, stats.get("verdict") or {}
    figures = [{"figure": key, "label": label,
                **{k: v for k, v in stats["figures"][key].items() if k in KEEP}}
               for key, label in HEADLINE if key in stats["figures"]]
    classes = [{"class": name, "verdict": entry.get("verdict"),
                "samples": entry.get("samples", 0), "counts": entry.get("counts", {}),
                **_worst(entry.get("figures") or {})}
               for name, entry in (stats.get("per_class") or {}).items()]
    return {"resamples": method.get("resamples"), "level": method.get("level"),
            "verdict": verdict.get("verdict"), "counts": verdict.get("counts", {}),
            "samples": verdict.get("samples", 0), "class_counts": verdict.get("classes", {}),
            "figures": figures, "classes": classes}


def _worst(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figure that decides a class's verdict: the largest excess over the floor among
    the failed ones, else an inconclusive one."""
    failed = [(e.get("beyond", 0.0), k) for k, e in figures.items() if e.get("verdict") == "fail"]
    if failed:
        _, key = max(failed)
    else:
        unsure = [k for k, e in figures.items() if e.get("verdict") == "inconclusive"]
        if not unsure:
            return {}
        key = unsure[0]
    return {"decided_by": key, **{k: v for k, v in figures[key].items() if k in KEEP
                                  and k != "samples"}}


def verdict_phrase(entry: dict[str, Any]) -> str:
    """One figure's verdict in the certificate's words."""
    verdict = entry.get("verdict")
    if verdict == "pass":
        return "within the spread of two retrainings"
    if verdict == "fail":
        lo, hi = entry["beyond_ci"]
        return (f"beyond it, by {_pp(entry['beyond'])} (95% CI {_pp(lo)} to {_pp(hi)})")
    if verdict == "inconclusive":
        lo, hi = entry["gap_ci"]
        return (f"inconclusive: the gap's 95% CI, {_pp(lo)} to {_pp(hi)}, straddles the "
                f"spread of two retrainings ({_pp(entry['floor'])})")
    return f"not judged: {entry.get('reason') or 'not measured'}"


def _pp(value: float) -> str:
    return f"{value * 100:.1f} pp"
