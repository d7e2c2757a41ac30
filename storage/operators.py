"""Operators bound to a passphrase, and the signatures on their decisions.

A passphrase goes through scrypt with a per-operator salt; the first half of the output
is stored as the verifier, the second half keys an HMAC-SHA256 over the canonical JSON of
what the operator decided. That key is never stored: an approval in the audit log can be
re-checked later by anyone who knows the passphrase, and forged by no one who does not.
The first operator is added without proof (bootstrap); later ones only by a registered
operator who proves their own passphrase.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage.errors import RefusedError, UnpromptError
from storage.models import Operator

SCRYPT = {"scheme": "scrypt", "n": 2**14, "r": 8, "p": 1}
MIN_PASSPHRASE = 8
SIGNATURE = "hmac-sha256/scrypt-passphrase"


class AuthenticationError(UnpromptError):
    """The operator is not registered or their passphrase is wrong."""


def _derive(passphrase: str, kdf: dict[str, Any]) -> tuple[bytes, bytes]:
    """(verifier, signing key) from the passphrase under the operator's stored parameters."""
    out = hashlib.scrypt(passphrase.encode("utf-8"), salt=bytes.fromhex(kdf["salt"]),
                         n=kdf["n"], r=kdf["r"], p=kdf["p"], maxmem=64 * 2**20, dklen=64)
    return out[:32], out[32:]


def list_operators(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Operator).order_by(Operator.name))
    return [{"name": o.name, "status": o.status, "created_by": o.created_by,
             "created_at": o.created_at.isoformat(), "kdf": o.kdf["scheme"]} for o in rows]


def add_operator(session: Session, name: str, passphrase: str, actor: str,
                 actor_passphrase: str | None = None) -> Operator:
    """Register ``name``; after the first operator, ``actor`` must prove their passphrase."""
    name = name.strip()
    if not name:
        raise UnpromptError("an operator needs a name")
    if len(passphrase) < MIN_PASSPHRASE:
        raise UnpromptError(f"the passphrase of {name!r} is too short "
                            f"(at least {MIN_PASSPHRASE} characters)")
    if session.get(Operator, name) is not None:
        raise RefusedError(f"operator {name!r} is already registered")
    bootstrap = not has_operators(session)
    if not bootstrap:
        authenticate(session, actor, actor_passphrase)
    kdf = {**SCRYPT, "salt": secrets.token_hex(16)}
    operator = Operator(name=name, kdf=kdf, verifier=_derive(passphrase, kdf)[0].hex(),
                        status="active", created_by=actor)
    session.add(operator)
    auditlog.append(session, actor, "operator.added",
                    {"operator": name, "kdf": kdf["scheme"], "bootstrap": bootstrap})
    session.flush()
    return operator


def has_operators(session: Session) -> bool:
    return session.scalars(select(Operator).limit(1)).first() is not None


def require_registered(session: Session, name: str) -> Operator:
    """The active operator called ``name``; one clear refusal otherwise."""
    operator = session.get(Operator, name)
    if operator is None:
        if not has_operators(session):
            raise AuthenticationError("no operators are registered in this workspace; add the "
                                      "first with `unprompt operators add NAME`")
        raise AuthenticationError(f"operator {name!r} is not registered "
                                  "(see `unprompt operators list`)")
    if operator.status != "active":
        raise AuthenticationError(f"operator {name!r} is {operator.status}")
    return operator


def authenticate(session: Session, name: str, passphrase: str | None) -> bytes:
    """The operator's signing key if ``passphrase`` is theirs; one clear refusal otherwise."""
    operator = require_registered(session, name)
    if not passphrase:
        raise AuthenticationError(f"operator {name!r} must give their passphrase "
                                  "(UNPROMPT_OPERATOR_PASSPHRASE or the prompt)")
    verifier, key = _derive(passphrase, operator.kdf)
    if not hmac.compare_digest(verifier.hex(), operator.verifier):
        raise AuthenticationError(f"wrong passphrase for operator {name!r}")
    return key


def sign(key: bytes, document: dict[str, Any]) -> str:
    """HMAC-SHA256 of the document's canonical JSON."""
    text = auditlog.canonical_json(document).encode("utf-8")
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def check_signature(session: Session, name: str, passphrase: str, document: dict[str, Any],
                    mac: str) -> bool:
    """Whether ``mac`` is ``name``'s signature of ``document`` (needs their passphrase)."""
    key = authenticate(session, name, passphrase)
    return hmac.compare_digest(sign(key, document), mac)
