"""Read-only queries the desktop application needs, returning plain dicts (no Qt here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import UnpromptError
from storage.models import AuditLogEntry, AuditRun, ErasureRequest, ForgetRule, Model
from storage.registry import class_dict, model_dict


def request_choices(session: Session) -> list[dict[str, Any]]:
    """Models a request can name: image models with their classes, LLMs with their rules."""
    choices = []
    for model in session.scalars(select(Model).where(Model.kind.in_(("image", "llm")))
                                 .order_by(Model.name)):
        rules = session.scalars(select(ForgetRule).where(ForgetRule.model_id == model.id)
                                .order_by(ForgetRule.name))
        choices.append({
            "name": model.name, "kind": model.kind,
            "classes": [{"index": c.label_index, "name": c.display_name, "status": c.status}
                        for c in model.classes],
            "rules": [{"name": r.name, "status": r.status} for r in rules],
            "people": _people(session, model),
        })
    return choices


def _people(session: Session, model: Model) -> list[str] | None:
    """The people whose records went into a fine-tuned model's live version (a request
    names one of them, docs/design.md section 14); None for any other model."""
    from storage.finetunes import FINETUNED, subjects_of

    if model.kind != "llm" or model.training_mode != FINETUNED:
        return None
    try:
        return sorted(subjects_of(session, model))
    except UnpromptError:  # no live version
        return []


def audit_log_rows(session: Session, limit: int = 10_000) -> list[dict[str, Any]]:
    """The newest ``limit`` audit-log entries, newest first."""
    entries = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq.desc())
                              .limit(limit))
    return [{"seq": e.seq, "timestamp": e.timestamp, "actor": e.actor, "action": e.action,
             "payload": e.payload, "hash": e.hash} for e in entries]


def model_overview(session: Session) -> list[dict[str, Any]]:
    """Every model with its versions (lineage, status, hashes) and classes, by name."""
    rows = []
    for model in session.scalars(select(Model).order_by(Model.name)):
        row = model_dict(model)
        row["classes"] = [class_dict(session, c) for c in model.classes]
        live = [v for v in row["versions"] if v["number"] == row["live_version"]]
        row["erasure_kind"] = live[0]["erasure_kind"] if live else ""
        rows.append(row)
    return rows


def approved_class_requests(session: Session, model_name: str) -> list[dict[str, Any]]:
    """Approved requests to forget classes of ``model_name`` (those a forget may execute)."""
    found = session.scalars(select(ErasureRequest).where(ErasureRequest.status == "approved")
                            .order_by(ErasureRequest.due_at))
    return [{"id": r.id, "due_at": r.due_at.isoformat(), "legal_basis": r.legal_basis,
             "approved_by": r.approved_by,
             "classes": [c["name"] for c in r.scope.get("classes", [])]}
            for r in found
            if r.scope.get("kind") == "classes" and r.scope.get("model") == model_name]


def model_kinds(session: Session) -> dict[str, str]:
    """Every model's name and kind (image / llm / backbone)."""
    return dict(session.execute(select(Model.name, Model.kind).order_by(Model.name)).all())


def audit_targets(session: Session) -> list[dict[str, Any]]:
    """Image models with their live version, forgotten classes and the erasure requests an
    audit of them verifies (executed or verified), by name."""
    from storage.audits import forget_requests

    rows = []
    for model in session.scalars(select(Model).where(Model.kind == "image")
                                 .order_by(Model.name)):
        live = [v.number for v in model.versions if v.status == "live"]
        rows.append({
            "name": model.name, "live_version": max(live) if live else None,
            "forgotten": [c.display_name for c in model.classes if c.status == "forgotten"],
            "requests": [{"id": r.id, "status": r.status}
                         for r in forget_requests(session, model)
                         if r.status in ("executed", "verified", "certified")]})
    return rows + people_targets(session)


def people_targets(session: Session) -> list[dict[str, Any]]:
    """Language models fine-tuned on a people corpus, with the requests about one person
    whose rule an audit (`guard eval`) verifies, by name (docs/design.md section 14)."""
    rows = []
    for model in session.scalars(select(Model).where(Model.kind == "llm",
                                                     Model.training_mode == "finetune")
                                 .order_by(Model.name)):
        requests = session.scalars(select(ErasureRequest).where(
            ErasureRequest.model_id == model.id).order_by(ErasureRequest.id))
        live = [v.number for v in model.versions if v.status == "live"]
        rows.append({"name": model.name, "live_version": max(live) if live else None,
                     "forgotten": [], "people": True,
                     "requests": [{"id": r.id, "status": r.status, "rule": r.scope["rule"]}
                                  for r in requests if "subject_records" in r.scope
                                  and r.status in ("executed", "verified", "certified")]})
    return rows


def guard_overview(session: Session) -> list[dict[str, Any]]:
    """Language models with their forget rules (examples, calibration, strength trace) and the
    erasure requests that name each rule, by name."""
    models = []
    for model in session.scalars(select(Model).where(Model.kind == "llm").order_by(Model.name)):
        rules = session.scalars(select(ForgetRule).where(ForgetRule.model_id == model.id)
                                .order_by(ForgetRule.name))
        requests = session.scalars(select(ErasureRequest).where(
            ErasureRequest.model_id == model.id).order_by(ErasureRequest.id)).all()
        evaluations = session.scalars(select(AuditRun).where(
            AuditRun.kind == "guard", AuditRun.version_id.in_([v.id for v in model.versions]))
            .order_by(AuditRun.id.desc())).all()
        models.append({"name": model.name, "spec": (model.config or {}).get("spec"),
                       "rules": [_rule_row(r, requests, evaluations) for r in rules]})
    return models


def _rule_row(rule: ForgetRule, requests: list[ErasureRequest],
              evaluations: list[AuditRun]) -> dict[str, Any]:
    last = next((a for a in evaluations if a.config.get("rule") == rule.name), None)
    return {"evaluation": None if last is None else {
                "id": last.id, "created_at": last.created_at.isoformat(),
                "rule_version": last.config.get("rule_version"), "metrics": last.metrics},
            "name": rule.name, "status": rule.status, "version": getattr(rule, "version", 1),
            "description": rule.description, "examples": dict(rule.examples or {}),
            "threshold": rule.threshold, "corruption": rule.corruption, "sigma": rule.sigma,
            "calibration": dict(rule.calibration or {}), "trace": list(rule.trace or []),
            "trained": bool(rule.classifier_artifact),
            "requests": [{"id": r.id, "status": r.status} for r in requests
                         if r.scope.get("kind") == "rule" and r.scope.get("rule") == rule.name]}
