"""What a certificate attests, read from the registry (docs/design.md section 7).

``gather`` turns one executed (or verified) erasure request into the facts dict that
``reports.manifest.build_manifest`` validates, plus the chart data of its latest audit.
Image-class requests are described here; forget-rule requests of guarded language models
in ``reports.rule_facts``. It refuses, with one sentence, a request that cannot be
certified: not executed yet, already certified, an isolated or approximate erasure with no
audit to measure the residual (docs/design.md section 4.3), or a forget rule that is
disabled or not audited at its version.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from reports import retrain_facts, rule_facts
from reports.audit_facts import audit_facts, measured_residual
from storage import auditlog
from storage.certificates import CERTIFIABLE, certificates_of
from storage.erasure_kinds import EXACT, needs_residual, request_kind
from storage.errors import RefusedError, UnpromptError
from storage.models import Artifact, AuditRun, ErasureRequest, Model, ModelVersion
from storage.requests import get_request
from storage.settings import get_setting

METHOD = {"name": "Pre-forgettable prompts (class prompt deletion)",
          "reference": "Hendrix et al., Pre-Forgettable Models: Prompt Learning as a Native "
                       "Mechanism for Unlearning, ACM MM 2025, arXiv 2509.15230"}
MODE_NOTES = {
    "isolated": "The other classes' own prompts, head rows and adapters were trained with the "
                "erased class's images as negatives.",
    "frozen": "The other classes' own prompts and head rows were trained with the erased "
              "class's images as negatives.",
    "lora": "The shared LoRA adapters were trained on every class, the erased one included.",
    "full": "The shared backbone was fine-tuned on every class, the erased one included.",
}
SOFTWARE = ("torch", "timm", "sqlalchemy", "jsonschema")
RULE_SOFTWARE = ("torch", "transformers", "sqlalchemy", "jsonschema")


def gather(session: Session, request_id: int | str, certificate_id: str
           ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(facts, chart data or None)`` for the certificate of one erasure request."""
    request = get_request(session, request_id)
    check_certifiable(session, request)
    if request.scope.get("kind") == "rule" and retrain_facts.retrained(request):
        return {**_common(session, request, certificate_id),
                **retrain_facts.gather_subject(session, request),
                "software": software(RULE_SOFTWARE)}, None
    if request.scope.get("kind") == "rule":
        return {**_common(session, request, certificate_id),
                **rule_facts.gather_rule(session, request),
                "software": software(RULE_SOFTWARE)}, None
    model = session.get(Model, request.model_id)
    if retrain_facts.retrained(request):
        return _gather_retrained(session, request, model, certificate_id)
    after = _version_after(session, model, request)
    before = session.get(ModelVersion, after.parent_id) if after.parent_id else None
    audit = latest_audit(session, request)
    kind = request_kind(request, model)
    failed = failed_rederivation(audit)
    if kind == EXACT and failed:  # docs/design.md section 17: not shown, not claimed
        kind = "approximate"
    if needs_residual(kind) and audit is None:
        raise RefusedError(
            f"request {request.id} was an {kind} erasure (training mode "
            f"{model.training_mode or 'unknown'}); audit it first (`audit {model.name} "
            "--reference --relearn`) so that the certificate can state the measured residual")
    names = {str(c.label_index): c.display_name for c in model.classes}
    facts = {
        **_common(session, request, certificate_id),
        "method": _method(model, request),
        "erasure": _erasure(kind, model, audit, failed),
        "model": {"name": model.name, "kind": model.kind, "backbone": model.backbone,
                  "version_before": before.number if before else None,
                  "version_after": after.number},
        "artifacts": {"before": artifact_map(before or after, names),
                      "after": artifact_map(after, names)},
        "purge": _purge(session, request, before, after),
        "residual_scan": request.result["residual_scan"],
        "audit": audit_facts(session, audit, kind),
        "software": software(),
    }
    return facts, (dict(audit.curves) if audit is not None and audit.curves else None)


def _gather_retrained(session: Session, request: ErasureRequest, model: Model,
                      certificate_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The certificate of a request a retrain made exact (``reports.retrain_facts``)."""
    before, after = retrain_facts.versions(session, model, request)
    audit = retrain_facts.latest_audit_of(session, after)
    names = {str(c.label_index): c.display_name for c in model.classes}
    facts = {
        **_common(session, request, certificate_id),
        "method": {**_method(model, request), "name": retrain_facts.METHOD_NAME,
                   "description": retrain_facts.method_text(request)},
        "erasure": {"kind": EXACT, "residual": None, "mechanism": "retrain"},
        "model": {"name": model.name, "kind": model.kind, "backbone": model.backbone,
                  "version_before": before.number if before else None,
                  "version_after": after.number},
        "artifacts": {"before": artifact_map(before or after, names),
                      "after": artifact_map(after, names)},
        "purge": {**retrain_facts.purge(request, lambda sha: session.get(Artifact, sha)),
                  "store": get_setting(session, "artifact_store")},
        "residual_scan": request.result["retrain"]["residual_scan"],
        "audit": audit_facts(session, audit, EXACT),
        "software": software(),
    }
    return facts, (dict(audit.curves) if audit is not None and audit.curves else None)


def _common(session: Session, request: ErasureRequest, certificate_id: str
            ) -> dict[str, Any]:
    """The facts every certificate states, whatever the scope."""
    return {"certificate_id": certificate_id,
            "request": {"id": request.id, "subject_ref_sha256": request.subject_hash,
                        "subject_ref_scheme": request.subject_scheme,
                        "legal_basis": request.legal_basis,
                        "requested_by": request.requested_by},
            "timeline": _timeline(request), "scope": request.scope,
            "operator": request.executed_by or request.requested_by,
            "approver": request.approved_by, "audit_log_head": _log_head(session)}


def check_certifiable(session: Session, request: ErasureRequest) -> None:
    """Refuse (one sentence) a request this version cannot certify."""
    rule = request.scope.get("kind") == "rule"
    if retrain_facts.retrained(request):
        retrain_facts.check_retrain_scanned(request)
    if request.status == "certified" and retrain_facts.recertifiable(session, request):
        return
    if request.status == "certified":
        issued = [c.id for c in certificates_of(session, request.id)]
        raise RefusedError(f"request {request.id} is already certified (certificate "
                           f"{', '.join(issued) or 'unknown'}); see `certificates`")
    if request.status not in CERTIFIABLE:
        how = (f"`guard rule enable {request.scope.get('rule')} --request {request.id}`"
               if rule else "`forget`")
        raise RefusedError(f"request {request.id} is {request.status}; only an executed or "
                           f"verified erasure can be certified (approve it, then {how})")
    if rule and not retrain_facts.retrained(request):  # a retired rule enforces nothing
        rule_facts.check_rule_certifiable(session, request)
    elif not rule and "residual_scan" not in request.result:
        raise RefusedError(f"request {request.id} has no recorded residual scan (the forget "
                           "was interrupted before its scan); it cannot be certified")


def latest_audit(session: Session, request: ErasureRequest) -> AuditRun | None:
    """The newest image audit attached to the request (by the run or by the request)."""
    attached = request.result.get("audit_run")
    query = select(AuditRun).where(AuditRun.kind == "image", or_(
        AuditRun.request_id == request.id, AuditRun.id == (attached or -1)))
    return session.scalars(query.order_by(AuditRun.id.desc())).first()


def artifact_map(version: ModelVersion, names: dict[str, str]) -> dict[str, str]:
    """``shared`` plus ``class:<name>`` for every per-class artifact of a version."""
    found = {"shared": version.shared_artifact} if version.shared_artifact else {}
    for label, sha in sorted(version.class_artifacts.items(), key=lambda kv: int(kv[0])):
        found[f"class:{names.get(label, label)}"] = sha
    return found


def software(names: tuple[str, ...] = SOFTWARE) -> dict[str, str]:
    """Versions of the engine packages, read without importing them."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _version_after(session: Session, model: Model, request: ErasureRequest) -> ModelVersion:
    number = request.result.get("version")
    version = next((v for v in model.versions if v.number == number), None)
    if version is None:
        raise UnpromptError(f"request {request.id} names no version of model {model.name!r} "
                            "that the registry holds")
    return version


def _timeline(request: ErasureRequest) -> dict[str, Any]:
    return {"received_at": request.received_at, "due_at": request.due_at,
            "approved_at": request.approved_at, "executed_at": request.executed_at,
            "verified_at": request.verified_at, "suppressed_at": request.suppressed_at,
            "exact_at": request.exact_at}


def _method(model: Model, request: ErasureRequest) -> dict[str, Any]:
    names = [c["name"] for c in request.scope.get("classes", [])]
    what = ("classes' prompt tokens and head rows were" if len(names) > 1
            else "class's prompt token and head row were")
    return {**METHOD, "training_mode": model.training_mode or "unknown",
            "description": f"The erased {what} deleted from the model; a new version was "
                           "written without them and the earlier stored copies were "
                           "purged from the workspace."}


def failed_rederivation(audit: AuditRun | None) -> list[int]:
    """Classes whose re-derivation (``audit --rederive``) did not give the served bytes."""
    found = (audit.metrics.get("rederive") if audit is not None else None) or {}
    if not found or found.get("passed"):
        return []
    return sorted(found.get("differing", []) + found.get("not_rederivable", []))


def _erasure(kind: str, model: Model, audit: AuditRun | None,
             failed: list[int] | None = None) -> dict[str, Any]:
    if kind == EXACT:
        return {"kind": EXACT, "residual": None}
    residual = measured_residual(audit.metrics if audit is not None else {})
    out = {"kind": kind, "residual": residual or {"measured": "no figures recorded"}}
    note = MODE_NOTES.get(model.training_mode)
    if failed:
        note = (f"Re-derivation of class(es) {', '.join(map(str, failed))} did not reproduce "
                "the served parameters, so the erasure is not shown to be exact.")
    return {**out, "note": note} if note else out


def _purge(session: Session, request: ErasureRequest, before: ModelVersion | None,
           after: ModelVersion) -> dict[str, Any]:
    purged = request.result.get("purged")
    if purged is None and before is not None:
        purged = sorted(set(before.class_artifacts.values()) - set(after.class_artifacts.values()))
    rows = [session.get(Artifact, sha) for sha in purged or []]
    return {"purged": list(purged or []),
            "complete": all(r is None or r.status == "purged" for r in rows),
            "store": get_setting(session, "artifact_store")}


def _log_head(session: Session) -> dict[str, Any]:
    head = auditlog.head(session)
    return {"seq": head.seq if head else 0, "hash": head.hash if head else auditlog.GENESIS}
