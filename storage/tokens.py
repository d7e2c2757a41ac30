"""Bearer tokens of the inference server (docs/design.md section 13).

A token is ``upt_`` plus 256 random bits; only its sha256 is stored, with a short prefix to
tell tokens apart in lists. Creating and revoking a token each write an audit-log entry in
the same transaction. A name belongs to at most one active token, so ``revoke NAME`` is
never ambiguous; a revoked token stays as a row (the log refers to it).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ServingToken, utcnow

SCOPES = ("predict", "chat")
TOKEN_PREFIX = "upt_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, name: str, scope: str, actor: str) -> tuple[str, ServingToken]:
    """A new token (returned once, never stored) and its row; logged ``token.created``."""
    name = name.strip()
    if not name:
        raise UnpromptError("a token needs a name (the application that uses it)")
    if scope not in SCOPES:
        raise UnpromptError(f"unknown scope {scope!r}; choose one of: {', '.join(SCOPES)}")
    if _active_named(session, name) is not None:
        raise RefusedError(f"an active token named {name!r} exists; revoke it first or "
                           "choose another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ServingToken(name=name, scope=scope, token_hash=token_hash(token),
                       prefix=token[:10], status="active", created_by=actor)
    session.add(row)
    session.flush()
    auditlog.append(session, actor, "token.created",
                    {"token": row.id, "name": name, "scope": scope, "prefix": row.prefix})
    return token, row


def revoke_token(session: Session, which: str, actor: str) -> ServingToken:
    """Revoke the active token named ``which`` (or with that id); logged ``token.revoked``."""
    row = _active_named(session, which)
    if row is None and which.isdigit():
        row = session.get(ServingToken, int(which))
    if row is None:
        raise NotFoundError(f"no token named {which!r} (see `token list`)")
    if row.status == "revoked":
        raise RefusedError(f"token {row.id} ({row.name!r}) is already revoked")
    row.status, row.revoked_at = "revoked", utcnow()
    auditlog.append(session, actor, "token.revoked",
                    {"token": row.id, "name": row.name, "scope": row.scope,
                     "prefix": row.prefix})
    return row


def list_tokens(session: Session) -> list[dict[str, Any]]:
    return [token_dict(t) for t in session.scalars(select(ServingToken)
                                                   .order_by(ServingToken.id))]


def token_dict(row: ServingToken) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "scope": row.scope, "prefix": row.prefix,
            "status": row.status, "created_by": row.created_by,
            "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}


def active_tokens(session: Session) -> dict[str, tuple[str, str]]:
    """``{sha256: (name, scope)}`` of every active token: what the server checks against."""
    rows = session.scalars(select(ServingToken).where(ServingToken.status == "active"))
    return {r.token_hash: (r.name, r.scope) for r in rows}


def _active_named(session: Session, name: str) -> ServingToken | None:
    return session.scalars(select(ServingToken).where(
        ServingToken.name == name, ServingToken.status == "active")).first()
