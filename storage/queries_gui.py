"""Read-only queries the desktop application needs, returning plain dicts (no Qt here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditLogEntry, ForgetRule, Model


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
        })
    return choices


def audit_log_rows(session: Session, limit: int = 10_000) -> list[dict[str, Any]]:
    """The newest ``limit`` audit-log entries, newest first."""
    entries = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq.desc())
                              .limit(limit))
    return [{"seq": e.seq, "timestamp": e.timestamp, "actor": e.actor, "action": e.action,
             "payload": e.payload, "hash": e.hash} for e in entries]
