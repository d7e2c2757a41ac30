"""Signed checkpoints of the audit log's head (docs/design.md section 3).

The chain alone proves only that the log is consistent with itself: whoever can write the
registry can cut its tail or recompute it from the start. A checkpoint is a small JSON file
under ``<workspace>/checkpoints/`` that states the head (seq and hash) at a moment, signed
with the workspace key, and referenced by a ``log.checkpoint`` entry. One is written with
every certificate (in the transaction that records it), every period report and on demand
(`log checkpoint`); ``log verify`` (reports/log_check.py) then checks that every checkpointed
head is still in the chain. Files are written atomically and never replaced.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy.orm import Session

from reports.keys import SigningIdentity, certificate_fingerprint, parse_certificate
from storage import auditlog
from storage.errors import UnpromptError
from storage.workspace import Workspace

SCHEMA = "unprompt.checkpoint/1"
FOLDER = "checkpoints"
ACTION = "log.checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file whose signature verified (``body`` is what was signed)."""

    name: str
    body: dict[str, Any]
    fingerprint: str
    certificate: Any
    sha256: str

    @property
    def seq(self) -> Any:
        return self.body["head"].get("seq")

    @property
    def hash(self) -> Any:
        return self.body["head"].get("hash")

    @property
    def signed_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.body["signed_at"])


def folder(ws: Workspace) -> Path:
    return ws.root / FOLDER


def _now() -> dt.datetime:
    """The signing time, from the audit log's clock (one clock for entries and checkpoints)."""
    return auditlog.utcnow()


def sign_body(body: dict[str, Any], identity: SigningIdentity) -> str:
    """Base64 signature (ECDSA or RSA PKCS#1 v1.5, SHA-256) of the canonical body."""
    data = auditlog.canonical_json(body).encode("utf-8")
    if isinstance(identity.key, ec.EllipticCurvePrivateKey):
        raw = identity.key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        raw = identity.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def make_checkpoint(session: Session, identity: SigningIdentity,
                    occasion: dict[str, Any]) -> tuple[str, bytes]:
    """``(file name, file bytes)`` of a signed checkpoint of the current head."""
    last = auditlog.head(session)
    seq, digest = (last.seq, last.hash) if last else (0, auditlog.GENESIS)
    body = {"schema": SCHEMA, "head": {"seq": seq, "hash": digest},
            "signed_at": _now().isoformat(timespec="seconds"), "occasion": occasion,
            "signer_certificate": identity.certificate_pem.decode("ascii")}
    document = {**body, "signature": sign_body(body, identity)}
    name = f"checkpoint-{seq:08d}-{digest[:12]}.json"
    return name, auditlog.canonical_json(document).encode("utf-8")


def write_in(session: Session, ws: Workspace, identity: SigningIdentity, operator: str,
             occasion: dict[str, Any]) -> Path:
    """Sign the head, write the file and log ``log.checkpoint`` in the caller's transaction.
    The caller removes the file if the transaction does not commit (see ``checkpointed``)."""
    from reports.signing import write_file

    name, data = make_checkpoint(session, identity, occasion)
    body = json.loads(data)
    path = folder(ws) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, data)
    try:
        auditlog.append(session, operator, ACTION, {
            "file": name, "sha256": hashlib.sha256(data).hexdigest(), "head": body["head"],
            "signed_at": body["signed_at"], "signer_fingerprint": identity.fingerprint,
            "occasion": occasion})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@dataclass
class Pending:
    """A checkpointed transaction: its session, then the file and timestamp outcome."""

    session: Session
    path: Path | None = None
    stamped: dict[str, Any] = field(default_factory=dict)


@contextmanager
def checkpointed(ws: Workspace, identity: SigningIdentity, operator: str,
                 occasion: dict[str, Any]) -> Iterator[Pending]:
    """A transaction that ends with a signed checkpoint of its own last entry; the file is
    removed again when the transaction fails, so nothing is left half-written. After the
    commit, the checkpoint is timestamped when a TSA is configured (reports/checkpoint_tsa)."""
    from reports.checkpoint_tsa import maybe_stamp

    pending: Pending | None = None
    try:
        with ws.sessions.begin() as session:
            pending = Pending(session)
            yield pending
            pending.path = write_in(session, ws, identity, operator, occasion)
    except BaseException:
        if pending is not None and pending.path is not None:
            pending.path.unlink(missing_ok=True)
        raise
    pending.stamped = maybe_stamp(ws, pending.path, operator)


def checkpoint(ws: Workspace, identity: SigningIdentity, operator: str,
               occasion: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint the head now (on demand, or after a period report); returns a summary."""
    with checkpointed(ws, identity, operator, occasion) as pending:
        pass
    return {**summary(load(pending.path)), **pending.stamped}


def load(path: Path) -> Checkpoint:
    """Read a checkpoint and check its signature; UnpromptError names what is wrong."""
    try:
        data = path.read_bytes()
        document = json.loads(data)
        body = {k: v for k, v in document.items() if k != "signature"}
        if body.get("schema") != SCHEMA or not isinstance(body.get("head"), dict):
            raise ValueError("not a checkpoint")
        cert = parse_certificate(body["signer_certificate"].encode("ascii"))
        dt.datetime.fromisoformat(body["signed_at"])
        signature = base64.b64decode(document["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnpromptError) as exc:
        raise UnpromptError(f"checkpoint {path.name} is unreadable") from exc
    if not _signature_ok(cert, signature, auditlog.canonical_json(body).encode("utf-8")):
        raise UnpromptError(f"checkpoint {path.name} has an invalid signature (edited?)")
    return Checkpoint(path.name, body, certificate_fingerprint(cert), cert,
                      hashlib.sha256(data).hexdigest())


def _signature_ok(cert: Any, signature: bytes, data: bytes) -> bool:
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def summary(found: Checkpoint) -> dict[str, Any]:
    return {"file": found.name, "head_seq": found.seq, "head_hash": found.hash,
            "signed_at": found.body["signed_at"], "signer_fingerprint": found.fingerprint,
            "occasion": found.body.get("occasion")}
