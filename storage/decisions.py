"""Signed requests, approvals and rejections in the audit log, and re-checking them later.

The log entry of a recorded request (``request.received``) or a decision carries the
document the operator signed (the action and the request it is about) and its HMAC under the
operator's passphrase-derived key (storage/operators.py). Anyone who knows the passphrase
can re-check it later; the check also says whether the request in the registry still reads
as it did when it was signed. Four-eyes rests on the signed ``request.received``: an
approver must differ from a requester who proved who they are (``unproven_requester``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog, operators
from storage.errors import NotFoundError
from storage.models import AuditLogEntry, ErasureRequest

RECEIVED = "request.received"
ACTIONS = (RECEIVED, "request.approved", "request.rejected")
_AT = {RECEIVED: "received_at", "request.approved": "approved_at",
       "request.rejected": "rejected_at"}


def document(request: ErasureRequest, operator: str, action: str,
             extra: dict[str, Any]) -> dict[str, Any]:
    """What a request, approval or rejection signs: the action and the request it is about."""
    at = getattr(request, _AT[action])
    signed = {"action": action, "operator": operator, "at": at.isoformat() if at else None,
              "request": request.id, "subject_hash": request.subject_hash,
              "subject_scheme": request.subject_scheme, "legal_basis": request.legal_basis,
              "scope": request.scope, "requested_by": request.requested_by,
              "received_at": request.received_at.isoformat()}
    if action == RECEIVED:
        signed["due_at"] = request.due_at.isoformat()
    return {**signed, **extra}


def append_signed(session: Session, key: bytes, request: ErasureRequest, operator: str,
                  action: str, extra: dict[str, Any]) -> None:
    """Log ``action`` with the signed document, in the caller's transaction."""
    signed = document(request, operator, action, extra)
    auditlog.append(session, operator, action,
                    {"request": request.id, **extra, "signed": signed,
                     "signature": {"scheme": operators.SIGNATURE,
                                   "hmac": operators.sign(key, signed)}})


def unproven_requester(session: Session, request: ErasureRequest) -> str | None:
    """Why the request's requester is not proven (None when they are).

    Proven: the ``request.received`` entry is signed by the operator the request names as
    requester, and the request still reads as it did when they signed it. The signature
    itself can only be re-checked with their passphrase (``check``); the entry says their
    passphrase was proven when the request was recorded, and the hash chain keeps it so.
    """
    try:
        entry = _entry(session, request.id, RECEIVED)
    except NotFoundError:
        return (f"was recorded by {request.requested_by!r} without proof of who they are "
                "(no signed request.received entry in the audit log)")
    payload = json.loads(entry.payload)
    if entry.actor != request.requested_by:
        return (f"names {request.requested_by!r} as requester but was signed by "
                f"{entry.actor!r}")
    if document(request, entry.actor, RECEIVED, _extra(payload)) != payload["signed"]:
        return f"was changed after {entry.actor!r} signed it"
    return None


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
    return {"request": request.id, "action": action, "operator": entry.actor,
            "valid": valid, "matches_request": document(request, entry.actor, action,
                                                        _extra(payload)) == signed}


def _extra(payload: dict[str, Any]) -> dict[str, Any]:
    """What a signed entry's payload adds to the document (a reason, the requester's proof).

    The scope and due date also stand in a ``request.received`` payload for readers of the
    log, but the document takes them from the request, so that a later change shows.
    """
    logged = ("request", "scope", "due_at", "signed", "signature")
    return {k: v for k, v in payload.items() if k not in logged}


def _entry(session: Session, request_id: int, action: str) -> AuditLogEntry:
    entries = session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)
                              .order_by(AuditLogEntry.seq.desc()))
    for entry in entries:
        payload = json.loads(entry.payload)
        if payload.get("request") == request_id and "signature" in payload:
            return entry
    raise NotFoundError(f"request {request_id} has no signed {action} entry in the audit log")
