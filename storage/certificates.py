"""Certificate rows (docs/design.md section 3): record an issued certificate, look one up for
``verify``, list them, and list the requests that can be certified."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage.models import Certificate, ErasureRequest, ForgetRule
from storage.requests import mark_certified, request_dict

CERTIFIABLE = ("executed", "verified")


def record_certificate(session: Session, *, request: ErasureRequest, certificate_id: str,
                       manifest_text: str, manifest_sha256: str, pdf_sha256: str,
                       pdf_path: str, signer_fingerprint: str, operator: str,
                       timestamped: bool = False) -> Certificate:
    """Store the row, log the issue and move the request to certified, in the caller's
    transaction (so all three happen or none does)."""
    row = Certificate(id=certificate_id, request_id=request.id, manifest=manifest_text,
                      manifest_sha256=manifest_sha256, pdf_sha256=pdf_sha256,
                      pdf_path=pdf_path, signer_fingerprint=signer_fingerprint)
    session.add(row)
    session.flush()
    auditlog.append(session, operator, "certificate.issued", {
        "certificate": certificate_id, "request": request.id,
        "manifest_sha256": manifest_sha256, "pdf_sha256": pdf_sha256,
        "signer_fingerprint": signer_fingerprint, "timestamped": timestamped})
    mark_certified(session, request, operator, certificate_id)
    return row


def certificate_dict(row: Certificate) -> dict[str, Any]:
    """What ``verify`` cross-checks, plus where the stored copy lies."""
    return {"certificate_id": row.id, "request_id": row.request_id,
            "manifest_sha256": row.manifest_sha256, "pdf_sha256": row.pdf_sha256,
            "signer_fingerprint": row.signer_fingerprint, "pdf_path": row.pdf_path,
            "created_at": row.created_at.isoformat()}


def lookup(session: Session, certificate_id: str) -> dict[str, Any] | None:
    """The certificate's record; for a forget-rule request also ``rule``, the rule as the
    registry holds it now (None when it no longer exists), which ``verify`` compares with
    the certified version."""
    row = session.get(Certificate, certificate_id)
    if row is None:
        return None
    found = certificate_dict(row)
    request = session.get(ErasureRequest, row.request_id)
    if request is not None and request.scope.get("kind") == "rule":
        found["rule"] = _rule_state(session, request)
    later = superseding(session, row)
    if later:
        found["superseded_by"] = later
    return found


def superseding(session: Session, row: Certificate) -> list[dict[str, Any]]:
    """Later certificates of the same request (e.g. exact after a retrain, docs/design.md
    section 18): the earlier one stays valid for what it said when it was issued."""
    out = []
    for other in certificates_of(session, row.request_id):
        if other.id != row.id and other.created_at > row.created_at:
            erasure = json.loads(other.manifest).get("erasure") or {}
            out.append({"certificate_id": other.id, "created_at": other.created_at.isoformat(),
                        "erasure_kind": erasure.get("kind")})
    return out


def _rule_state(session: Session, request: ErasureRequest) -> dict[str, Any] | None:
    rule = session.scalars(select(ForgetRule).where(
        ForgetRule.model_id == request.model_id,
        ForgetRule.name == request.scope.get("rule"))).first()
    if rule is None:
        return None
    return {"name": rule.name, "status": rule.status, "version": rule.version,
            "classifier_artifact": rule.classifier_artifact}


def certificates_of(session: Session, request_id: int) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.request_id == request_id)
                                .order_by(Certificate.created_at)))


def list_certificates(session: Session) -> list[dict[str, Any]]:
    """Every issued certificate, newest first, with its request's scope."""
    rows = session.scalars(select(Certificate).order_by(Certificate.created_at.desc()))
    out = []
    for row in rows:
        request = session.get(ErasureRequest, row.request_id)
        out.append({**certificate_dict(row), "scope": request.scope if request else {}})
    return out


def certifiable_requests(session: Session) -> list[dict[str, Any]]:
    """Requests that were executed (and perhaps verified) but have no certificate yet."""
    found = session.scalars(select(ErasureRequest)
                            .where(ErasureRequest.status.in_(CERTIFIABLE))
                            .order_by(ErasureRequest.executed_at))
    return [{**request_dict(r), "audit_run": r.result.get("audit_run")} for r in found]
