"""The audit section of an image-class certificate, read from a stored audit run
(docs/design.md sections 5, 7 and 15): the figures it quotes (rounded, no per-class detail),
the residual an isolated or approximate erasure may have left, the checks against the
workspace's thresholds (and the re-derivation of section 17), and the noise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from reports.noise_facts import noise_facts
from storage.audit_checks import check_audit, relearn_gap
from storage.erasure_kinds import KINDS, weakest
from storage.models import AuditRun
from storage.settings import get_setting

ATTACK_KEYS = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")
# SalUn's MIA-efficacy, whether it is degenerate (a forgotten class has no logit column),
# the label-free top-1 MIA-efficacy, and the forget distinguishability
MEASURED = ("mia_efficacy", "mia_efficacy_degenerate", "mia_efficacy_top1",
            "forget_distinguishability_auc")


def measured_residual(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures that measure what an isolated or approximate erasure may have left."""
    ref = metrics.get("reference") or {}
    out: dict[str, Any] = {}
    gap = relearn_gap(metrics.get("relearn"), ref.get("relearn"))
    if gap is not None:
        out["relearn_largest_gap"] = _round(gap)
    for n in ("5", "20"):
        if n in (metrics.get("relearn") or {}):
            out[f"relearn_accuracy_{n}_shots"] = _round(metrics["relearn"][n])
            if n in (ref.get("relearn") or {}):
                out[f"reference_relearn_accuracy_{n}_shots"] = _round(ref["relearn"][n])
    for key in MEASURED:
        if key in metrics:
            out[key] = _round(metrics[key])
        if key in ref:
            out[f"reference_{key}"] = _round(ref[key])
    for prefix, part in (("", metrics), ("reference_", ref)):
        probe = (part.get("linear_probe") or {}).get("forget_accuracy")
        if probe is not None:
            out[f"{prefix}linear_probe_forget_accuracy"] = _round(probe)
    return out


def audit_facts(session: Session, audit: AuditRun | None, kind: str
                ) -> dict[str, Any] | None:
    """What a certificate says of the request's latest image audit: its figures (the
    erasure kind no stronger than ``kind``), the reference, the checks and the noise."""
    if audit is None:
        return None
    metrics = audit.metrics
    checks = check_audit(metrics, get_setting(session, "thresholds"))
    ref_run = audit.config.get("reference_run")
    quoted = figures(metrics)  # an audit stored before the kinds said "exact" for isolated
    quoted["erasure"] = weakest(quoted["erasure"], kind) if quoted["erasure"] in KINDS else kind
    rows = [{k: (_round(v) if isinstance(v, float) else v) for k, v in c.items()}
            for c in checks["checks"]]
    passed = checks["passed"]
    if metrics.get("rederive"):  # docs/design.md section 17
        rows.append(_rederive_check(metrics["rederive"]))
        passed = False if not rows[-1]["passed"] else passed
    return {"run_id": audit.id, "created_at": audit.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "figures": quoted,
            "reference": figures(metrics["reference"]) if metrics.get("reference") else None,
            "reference_id": _reference_label(audit, ref_run),
            "passed": passed, "checks": rows, "noise": noise_facts(metrics)}


def _rederive_check(found: dict[str, Any]) -> dict[str, Any]:
    """The re-derivation as one audit check: classes, identical or not, environment."""
    return {"name": "rederive", "label": "Re-derivation of the remaining classes (bytes)",
            "passed": bool(found.get("passed")), "classes": found.get("classes", []),
            "identical": found.get("identical", []), "differing": found.get("differing", []),
            "not_rederivable": found.get("not_rederivable", []),
            "same_environment": found.get("same_environment"),
            "environment": found.get("environment", {})}


def _reference_label(audit: AuditRun, ref_run: Any) -> str | None:
    if not ref_run:
        return None
    forgotten = ", ".join(str(c) for c in audit.config.get("forgotten", []))
    return f"reference run {ref_run}: retrained without class(es) {forgotten}"


def figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The audit figures a certificate quotes (no per-class detail), rounded."""
    card = metrics.get("scorecard") or {}
    out: dict[str, Any] = {
        "scorecard": {k: _round(card[k]) for k in ("forget_accuracy", "retain_accuracy",
                                                   "test_accuracy") if card.get(k) is not None},
        "threshold_attacks": {name: {k: _round(a[k]) for k in ATTACK_KEYS if k in a}
                              for name, a in (metrics.get("threshold_attacks") or {}).items()},
        "relearn": ({n: _round(v) for n, v in metrics["relearn"].items()}
                    if metrics.get("relearn") else None),
        "erasure": metrics.get("erasure", "approximate"),
    }
    for key in MEASURED:
        if metrics.get(key) is not None:
            out[key] = _round(metrics[key])
    probe = metrics.get("linear_probe") or {}
    if probe.get("forget_accuracy") is not None:
        out["linear_probe"] = {"forget_accuracy": _round(probe["forget_accuracy"])}
    lira = metrics.get("lira") or {}
    if lira:
        out["lira"] = {k: _round(lira[k]) for k in ATTACK_KEYS if k in lira}
    rmia = metrics.get("rmia") or {}  # section 15: a figure on too few samples is absent
    if rmia:
        out["rmia"] = {k: _round(rmia[k]) for k in ATTACK_KEYS if k in rmia}
    return out


def _round(value: Any) -> Any:
    """Four decimals for a figure; a flag (bool) or text as it is."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return round(float(value), 4) if numeric else value
