"""Signed approvals and rejections in the audit log, and re-checking them later.

The log entry of a decision carries the document the operator signed (the decision and the
request it is about) and its HMAC under the operator's passphrase-derived key
(storage/operators.py). Anyone who knows the passphrase can re-check it later; the check
also says whether the request in the registry still reads as it did when it was signed.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog, operators
from storage.errors import NotFoundError
from storage.models import AuditLogEntry, ErasureRequest

ACTIONS = ("request.approved", "request.rejected")


def document(request: ErasureRequest, operator: str, action: str,
             extra: dict[str, Any]) -> dict[str, Any]:
    """What an approval or rejection signs: the decision and the request it is about."""
    at = request.approved_at if action == "request.approved" else request.rejected_at
    return {"action": action, "operator": operator, "at": at.isoformat() if at else None,
            "request": request.id, "subject_hash": request.subject_hash,
            "subject_scheme": request.subject_scheme, "legal_basis": request.legal_basis,
            "scope": request.scope, "requested_by": request.requested_by,
            "received_at": request.received_at.isoformat(), **extra}


def append_signed(session: Session, key: bytes, request: ErasureRequest, operator: str,
                  action: str, extra: dict[str, Any]) -> None:
    """Log ``action`` with the signed document, in the caller's transaction."""
    signed = document(request, operator, action, extra)
    auditlog.append(session, operator, action,
                    {"request": request.id, **extra, "signed": signed,
                     "signature": {"scheme": operators.SIGNATURE,
                                   "hmac": operators.sign(key, signed)}})


def signer(session: Session, request: ErasureRequest, action: str) -> str:
    """Who signed ``action`` on the request (to ask for the right passphrase)."""
    return _entry(session, request.id, action).actor


def check(session: Session, request: ErasureRequest, action: str,
          passphrase: str) -> dict[str, Any]:
    """Re-check the signed ``action`` with its operator's passphrase.

    ``valid``: the HMAC in the log is that operator's; ``matches_request``: the request in
    the registry still says what was signed.
    """
    entry = _entry(session, request.id, action)
    payload = json.loads(entry.payload)
    signed, mac = payload["signed"], payload["signature"]["hmac"]
    valid = operators.check_signature(session, entry.actor, passphrase, signed, mac)
    extra = {k: v for k, v in payload.items() if k not in ("request", "signed", "signature")}
    return {"request": request.id, "action": action, "operator": entry.actor,
            "valid": valid, "matches_request": document(request, entry.actor, action,
                                                        extra) == signed}


def _entry(session: Session, request_id: int, action: str) -> AuditLogEntry:
    entries = session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)
                              .order_by(AuditLogEntry.seq.desc()))
    for entry in entries:
        payload = json.loads(entry.payload)
        if payload.get("request") == request_id and "signature" in payload:
            return entry
    raise NotFoundError(f"request {request_id} has no signed {action} entry in the audit log")
