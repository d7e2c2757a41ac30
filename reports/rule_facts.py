"""What a certificate attests for a forget-rule request of a guarded language model.

A forget rule (docs/design.md section 6) does not change the language model: a prompt
classifier flags prompts about the topic and the guard corrupts their input embeddings at
inference. The certificate says so (``erasure.kind`` ``suppressed``, docs/design.md section
4.3; ``erasure.mechanism`` ``inference-guard``, ``weights_changed`` false), describes the
rule version in force, and quotes the latest `guard eval` of that version against the
ignorant reference, with pass / fail against the workspace's ``guard_thresholds``. Every
audit figure quoted rests on held-out prompts only (the rule's ``test`` split and the
bundled held-out everyday prompts), with the number of prompts beside it; an audit stored
before held-out scoring is refused until the rule is evaluated again.
``reports.certificate_facts`` adds the parts every certificate shares.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage import rules as store
from storage.audit_checks import HELD_OUT_BASIS, check_guard_audit, held_out
from storage.erasure_kinds import SUPPRESSED
from storage.errors import RefusedError
from storage.models import AuditRun, ErasureRequest, ForgetRule, Model
from storage.registry import live_version
from storage.rule_audits import rule_audits
from storage.settings import get_setting

METHOD = {"name": "Embedding-corrupted prompts (ECO guard at inference)",
          "training_mode": "guard",
          "reference": "Liu et al., Large Language Model Unlearning via Embedding-Corrupted "
                       "Prompts, NeurIPS 2024, arXiv 2406.07933"}
NOTE = ("The language model's weights are unchanged. The knowledge is suppressed at "
        "inference: a prompt classifier flags prompts about the topic and the guard corrupts "
        "their input embeddings. A prompt the classifier misses is answered as before, so the "
        "guard must stay enabled; disabling the rule is refused while it enforces this "
        "request.")
CALIBRATION_KEYS = ("target_fpr", "tpr", "fpr", "n_positive", "n_negative", "n_fit_positive",
                    "n_fit_negative", "folds", "method", "sources")
SEARCH_KEYS = ("known", "used", "evaluated", "ignorant_level", "objective", "note")


def rule_of(session: Session, request: ErasureRequest) -> tuple[Model, ForgetRule]:
    model = session.get(Model, request.model_id)
    return model, store.get_rule(session, model, request.scope["rule"])


def check_rule_certifiable(session: Session, request: ErasureRequest) -> AuditRun:
    """Refuse (one sentence) a rule request whose rule is not in force or not audited;
    returns the audit of the rule version in force."""
    model, rule = rule_of(session, request)
    if rule.status != "active":
        raise RefusedError(f"forget rule {rule.name!r} is disabled, so it no longer enforces "
                           f"request {request.id}; enable it again before certifying")
    audit = guard_audit(session, rule)
    if audit is None:
        raise RefusedError(
            f"request {request.id} is enforced by forget rule {rule.name!r} version "
            f"{rule.version}, which has no audit; run `guard eval {rule.name} --request "
            f"{request.id}` first so that the certificate can state what the guard leaves")
    if not held_out(audit.metrics):
        raise RefusedError(
            f"audit run {audit.id} of forget rule {rule.name!r} predates held-out scoring: it "
            "counted the rule's training prompts too; run `guard eval "
            f"{rule.name} --request {request.id}` again so that the certificate quotes "
            "held-out figures only")
    return audit


def guard_audit(session: Session, rule: ForgetRule) -> AuditRun | None:
    """The newest `guard eval` of the rule version now in force."""
    return next((run for run in rule_audits(session, rule)
                 if run.config.get("rule_version") == rule.version), None)


def gather_rule(session: Session, request: ErasureRequest) -> dict[str, Any]:
    """The rule-specific facts (method, erasure, model, artifacts, guard, audit)."""
    model, rule = rule_of(session, request)
    audit = check_rule_certifiable(session, request)
    version = live_version(session, model).number
    label = f"prompt classifier of rule {rule.name}"
    return {
        "method": {**METHOD, "description": _description(rule)},
        "erasure": {"kind": SUPPRESSED, "mechanism": "inference-guard",
                    "weights_changed": False, "residual": _residual(audit.metrics),
                    "note": NOTE},
        "model": {"name": model.name, "kind": model.kind, "backbone": model.backbone,
                  "version_before": version, "version_after": version},
        "artifacts": {"before": {label: request.result["classifier_artifact"]},
                      "after": {label: rule.classifier_artifact}},
        "guard": {"rule": _rule(rule, request), "language_model": _language_model(model),
                  "strength_search": _search(rule), "must_stay_enabled": True},
        "audit": _audit(session, audit),
    }


def _description(rule: ForgetRule) -> str:
    if rule.corruption in store.PERSON_FAMILIES:  # not an embedding corruption (pdf_guard)
        done = (f"are answered with the data subject's corruption ({rule.corruption}, "
                "section 3)")
    else:
        done = (f"have their input embeddings corrupted ({rule.corruption}, strength sigma "
                f"{rule.sigma:.4g}) before the model answers")
    return (f"Forget rule '{rule.name}' version {rule.version} is enabled on the language "
            "model's inference path: prompts its classifier scores strictly above the "
            f"threshold {done}. No weight of the language model was changed or deleted.")


def _rule(rule: ForgetRule, request: ErasureRequest) -> dict[str, Any]:
    calibration = rule.calibration or {}
    return {"name": rule.name, "version": rule.version,
            "executed_version": request.result.get("rule_version", rule.version),
            "status": rule.status, "description": rule.description or "",
            "classifier_artifact": rule.classifier_artifact,
            "threshold": _round(rule.threshold), "corruption": rule.corruption,
            "corruption_params": store.public_params(rule.corruption_params),
            "sigma": _round(rule.sigma),
            "calibration": {k: _round(calibration[k]) for k in CALIBRATION_KEYS
                            if calibration.get(k) is not None},
            "examples": _examples(rule.examples or {})}


def _examples(examples: dict[str, Any]) -> dict[str, int]:
    """Example counts per part, and per part how many are held out (split ``test``): the
    audit's prompts, which the classifier never trained on."""
    parts = ("forget", "retain", "general")
    counts = {part: len(examples.get(part) or []) for part in parts}
    held = {f"{part}_held_out": sum(1 for e in examples.get(part) or []
                                    if isinstance(e, dict) and e.get("split") == "test")
            for part in parts}
    return {**counts, **held}


def _language_model(model: Model) -> dict[str, Any]:
    details = live_version_metrics(model)
    return {"name": model.name, "spec": model.config.get("spec"),
            "encoder": model.config.get("encoder"), "parameters": details.get("parameters"),
            "weights_changed": False}


def live_version_metrics(model: Model) -> dict[str, Any]:
    live = [v for v in model.versions if v.status == "live"] or list(model.versions)
    return dict(live[-1].metrics or {}) if live else {}


def _search(rule: ForgetRule) -> dict[str, Any]:
    """A summary of the zeroth-order strength search and its trace."""
    info = (rule.calibration or {}).get("sigma_search") or {}
    trace = [{k: _round(step[k]) for k in ("eval", "sigma", "knowledge", "objective")
              if step.get(k) is not None} for step in rule.trace or []]
    out = {k: _round(info[k]) for k in SEARCH_KEYS if info.get(k) not in (None, "")}
    return {**out, "evaluations": len(trace), "chosen_sigma": _round(rule.sigma),
            "trace": trace}


def _residual(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the guard may leave, on held-out prompts: knowledge after it (on the
    ``known_prompts``, vs the ignorant reference on ``reference_prompts``) and the share of
    the ``classifier_prompts`` held-out forget prompts the classifier misses."""
    knowledge, classifier = metrics.get("knowledge") or {}, metrics.get("classifier") or {}
    out = {"knowledge_after": knowledge.get("after"),
           "reference_knowledge_after": knowledge.get("ignorant"),
           "known_prompts": knowledge.get("known"),
           "evaluated_prompts": knowledge.get("evaluated"),
           "reference_prompts": knowledge.get("ignorant_prompts"),
           "classifier_miss_rate": (None if classifier.get("tpr_forget") is None
                                    else 1.0 - classifier["tpr_forget"]),
           "classifier_prompts": (classifier.get("counts") or {}).get("forget")}
    found = {k: _round(v) for k, v in out.items() if v is not None}
    return {"basis": HELD_OUT_BASIS, **found} if found else {"measured": "no figures recorded"}


def _audit(session: Session, audit: AuditRun) -> dict[str, Any]:
    checks = check_guard_audit(audit.metrics, get_setting(session, "guard_thresholds"))
    figures = guard_figures(audit.metrics)
    subject = subject_figures(audit.metrics.get("subject"),
                              (audit.curves or {}).get("subject") or {})
    if subject:
        figures["subject"] = subject
    return {"run_id": audit.id, "kind": "guard",
            "created_at": audit.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "figures": figures, "reference": None,
            "reference_id": "ignorant reference: the same language model answering questions "
                            "it cannot know (the knowledge level of a model never taught the "
                            "topic)",
            "passed": checks["passed"],
            "checks": [{k: (_round(v) if isinstance(v, float) else v) for k, v in c.items()}
                       for c in checks["checks"]]}


def subject_figures(subject: dict[str, Any] | None, curves: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """The TOFU / MUSE figures of a person's rule (docs/design.md section 14), rounded, with
    the chart data (truth-ratio histograms, Min-K%++ ROC); never an answer text, which would
    name the person."""
    if not subject:
        return None
    models = {name: _round({k: v for k, v in m.items() if k != "examples"})
              for name, m in (subject.get("models") or {}).items()}
    return {"models": models, "reference": subject.get("reference"),
            "counts": subject.get("counts"), "basis": subject.get("basis"),
            **({"corruption": _round_all(subject["corruption"])}
               if subject.get("corruption") else {}),
            "charts": _round_all({k: curves.get(k) for k in ("truth_ratio_histograms",
                                                             "mia_roc") if curves.get(k)})}


def _round_all(value: Any) -> Any:
    """``_round`` into lists too (chart points)."""
    if isinstance(value, list):
        return [_round_all(v) for v in value]
    if isinstance(value, dict):
        return {k: _round_all(v) for k, v in value.items()}
    return _round(value)


def guard_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The `guard eval` figures a certificate quotes (no prompt texts), rounded."""
    pick = {"knowledge": ("before", "after", "after_all", "ignorant", "gap_to_ignorant",
                          "known", "evaluated", "flagged_known", "ignorant_prompts"),
            "side_effects": ("identical", "identical_unflagged", "evaluated", "flagged",
                             "unflagged", "keyed", "neighbour_knowledge_before",
                             "neighbour_knowledge_after"),
            "classifier": ("threshold", "tpr_forget", "fpr_neighbour", "fpr_general",
                           "counts", "latency_ms"),
            "latency": ("answer_ms_unguarded", "answer_ms_guarded", "overhead_share")}
    out: dict[str, Any] = {"erasure": SUPPRESSED}
    if held_out(metrics):
        out["basis"] = HELD_OUT_BASIS
    for part, keys in pick.items():
        found = metrics.get(part) or {}
        out[part] = {k: _round(found[k]) for k in keys if found.get(k) is not None}
    return out


def _round(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return value if isinstance(value, int) else round(float(value), 4)
