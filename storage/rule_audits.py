"""The requests a forget rule enforces and its `guard eval` runs (docs/design.md sections
3.3, 5.4 and 6): storing an audit of a rule verifies the executed requests it covers. Runs
inside the caller's ``with Session.begin()`` and logs what it changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage import requests as reqs
from storage.errors import RefusedError
from storage.models import AuditRun, ErasureRequest, ForgetRule, Model
from storage.registry import live_version

GUARD_AUDIT_KIND = "guard"


def rule_requests(session: Session, rule: ForgetRule) -> list[ErasureRequest]:
    """Erasure requests whose scope is this rule, oldest first."""
    model = session.get(Model, rule.model_id)
    found = session.scalars(select(ErasureRequest).where(ErasureRequest.model_id == model.id)
                            .order_by(ErasureRequest.id))
    return [r for r in found if r.scope.get("kind") == "rule"
            and r.scope.get("rule") == rule.name]


def record_rule_audit(session: Session, rule: ForgetRule, *, metrics: dict[str, Any],
                      curves: dict[str, Any], config: dict[str, Any], operator: str,
                      request_id: int | str | None = None) -> tuple[AuditRun, list[int]]:
    """Store a `guard eval` (AuditRun kind 'guard') and verify the requests it covers.

    Every executed request of this rule is verified; a named request must be one of them.
    """
    model = session.get(Model, rule.model_id)
    covered = [r for r in rule_requests(session, rule) if r.status in ("executed", "verified")]
    if request_id is not None:
        named = reqs.get_request(session, request_id)
        if named.id not in {r.id for r in covered}:
            raise RefusedError(f"request {named.id} is {named.status} and covers "
                               f"{named.scope.get('kind')} {named.scope.get('rule')!r}; only "
                               f"an executed request of rule {rule.name!r} can be verified")
    run = AuditRun(version_id=live_version(session, model).id, kind=GUARD_AUDIT_KIND,
                   config={**config, "rule": rule.name, "rule_version": rule.version},
                   metrics=metrics, curves=curves,
                   request_id=covered[-1].id if covered else None)
    session.add(run)
    session.flush()
    auditlog.append(session, operator, "audit.recorded", {
        "audit_run": run.id, "kind": GUARD_AUDIT_KIND, "model": model.name, "rule": rule.name,
        "rule_version": rule.version, "requests": [r.id for r in covered]})
    for request in covered:
        reqs.mark_verified(session, request, operator, run.id)
    return run, [r.id for r in covered]


def rule_audits(session: Session, rule: ForgetRule) -> list[AuditRun]:
    """The `guard eval` runs of this rule, newest first."""
    model = session.get(Model, rule.model_id)
    ids = [v.id for v in model.versions]
    runs = session.scalars(select(AuditRun).where(AuditRun.kind == GUARD_AUDIT_KIND,
                                                  AuditRun.version_id.in_(ids))
                           .order_by(AuditRun.id.desc()))
    return [r for r in runs if r.config.get("rule") == rule.name]
