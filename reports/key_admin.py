"""The workspace's signing key and trusted certificates as operator actions, each logged.

Generating the key on first use, importing an organisation's PKCS#12 and pinning a
certificate change what the workspace signs with or accepts, so each writes an entry to
the hash-chained audit log (DESIGN.md section 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from reports import keys
from storage import auditlog
from storage.errors import NotFoundError, UnpromptError
from storage.workspace import Workspace


def has_signing_key(ws: Workspace) -> bool:
    return (ws.keys_dir / keys.P12_NAME).exists()


def signing_identity(ws: Workspace, passphrase: bytes, operator: str) -> keys.SigningIdentity:
    """Open the signing key, generating it (and logging that) on first use."""
    generated = not has_signing_key(ws)
    identity = keys.ensure_signing_key(ws.keys_dir, passphrase)
    if generated:
        with ws.sessions.begin() as session:
            auditlog.append(session, operator, "keys.generated",
                            {"fingerprint": identity.fingerprint, "subject": identity.subject})
    return identity


@contextmanager
def command_signing_identity(ws: Workspace, passphrase: bytes, operator: str
                             ) -> Iterator[keys.SigningIdentity]:
    """``signing_identity`` for one command: a key generated for it is removed again when the
    command fails (and that logged), so a failed command leaves no key behind."""
    generated = not has_signing_key(ws)
    identity = signing_identity(ws, passphrase, operator)
    try:
        yield identity
    except BaseException:
        if generated:
            _discard(ws, identity, operator)
        raise


def _discard(ws: Workspace, identity: keys.SigningIdentity, operator: str) -> None:
    keys.discard_signing_key(ws.keys_dir, identity.fingerprint)
    with suppress(SQLAlchemyError, UnpromptError), ws.sessions.begin() as session:
        auditlog.append(session, operator, "keys.discarded",  # the command's error is reported
                        {"fingerprint": identity.fingerprint,
                         "reason": "the command that generated it failed"})


def show(ws: Workspace) -> dict[str, Any]:
    """The signing certificate (readable without the passphrase) and every pinned one."""
    signing = None
    if (ws.keys_dir / keys.CRT_NAME).exists():
        signing = describe(keys.signing_certificate(ws.keys_dir))
        signing["certificate_file"] = str(ws.keys_dir / keys.CRT_NAME)
    trusted = [describe(c) for c in keys.trusted_certificates(ws.keys_dir)]
    return {"signing": signing, "trusted": trusted, "keys_dir": str(ws.keys_dir)}


def describe(cert: Any) -> dict[str, Any]:
    return {"subject": cert.subject.rfc4514_string(),
            "fingerprint": keys.certificate_fingerprint(cert),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def import_key(ws: Workspace, p12_file: str | Path, passphrase: bytes,
               operator: str) -> dict[str, Any]:
    """Make an organisation's PKCS#12 the signing key (stored under the same passphrase)."""
    identity = keys.import_pkcs12(ws.keys_dir, _read(p12_file), passphrase)
    with ws.sessions.begin() as session:
        auditlog.append(session, operator, "keys.imported",
                        {"fingerprint": identity.fingerprint, "subject": identity.subject})
    return describe(identity.certificate)


def trust(ws: Workspace, cert_file: str | Path, operator: str) -> dict[str, Any]:
    """Pin a certificate (PEM or DER): signatures by it verify in this workspace."""
    cert = keys.parse_certificate(_read(cert_file))
    fingerprint = keys.trust_certificate(ws.keys_dir, cert.public_bytes(_pem()))
    with ws.sessions.begin() as session:
        auditlog.append(session, operator, "keys.trusted",
                        {"fingerprint": fingerprint, "subject": cert.subject.rfc4514_string()})
    return describe(cert)


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def _read(path: str | Path) -> bytes:
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist or is not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnpromptError(f"cannot read {path}: {exc.strerror}") from exc
