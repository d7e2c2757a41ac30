"""The workspace's signing key and trusted certificates as operator actions, each logged.

Generating the key on first use, importing an organisation's PKCS#12, pinning a
certificate and revoking a key change what the workspace signs with or accepts, so each
writes an entry to the hash-chained audit log (docs/design.md section 3); that entry, not the
file in ``keys/``, is what makes a key trusted (reports/trust.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from reports import keys
from reports.trust import LogTrust, pinned_certificates, read_trust
from storage import auditlog
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.workspace import Workspace


def has_signing_key(ws: Workspace) -> bool:
    return (ws.keys_dir / keys.P12_NAME).exists()


def signing_identity(ws: Workspace, passphrase: bytes, operator: str) -> keys.SigningIdentity:
    """Open the signing key, generating it (and logging that) on first use; refuse a key
    that was revoked or whose pinning is not in the audit log (docs/design.md section 7)."""
    generated = not has_signing_key(ws)
    identity = keys.ensure_signing_key(ws.keys_dir, passphrase)
    if generated:
        with ws.sessions.begin() as session:
            auditlog.append(session, operator, "keys.generated",
                            {"fingerprint": identity.fingerprint, "subject": identity.subject})
    _check_usable(ws, identity.fingerprint)
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


def _check_usable(ws: Workspace, fingerprint: str) -> None:
    with ws.sessions() as session:
        found = read_trust(session)
    if fingerprint in found.revoked:
        when = found.revoked[fingerprint]
        raise RefusedError(f"the signing key {fingerprint[:16]}… was revoked (log entry "
                           f"{when['seq']}, {when['at'][:10]}); import a new key with "
                           "`keys import`")
    if fingerprint not in found.own:
        raise RefusedError(f"the signing key {fingerprint[:16]}… in {ws.keys_dir} was not "
                           "generated or imported through Unprompt (no audit-log entry); "
                           "import it with `keys import`")


def show(ws: Workspace) -> dict[str, Any]:
    """The signing certificate (readable without the passphrase), every certificate pinned
    in the audit log (with its pinning entry and any revocation), and the ignored files."""
    with ws.sessions() as session:
        found = read_trust(session)
    signing = None
    if (ws.keys_dir / keys.CRT_NAME).exists():
        signing = describe(keys.signing_certificate(ws.keys_dir))
        signing["certificate_file"] = str(ws.keys_dir / keys.CRT_NAME)
        signing["revoked"] = found.revoked.get(signing["fingerprint"])
    certs, ignored = pinned_certificates(ws.keys_dir, found)
    trusted = [_pinned(describe(c), found) for c in certs]
    return {"signing": signing, "trusted": trusted, "ignored": ignored,
            "keys_dir": str(ws.keys_dir), "log_valid": found.chain_valid}


def _pinned(info: dict[str, Any], found: LogTrust) -> dict[str, Any]:
    pin = found.pins[info["fingerprint"]]
    return {**info, "pinned_by": pin["action"], "pinned_in_entry": pin["seq"],
            "revoked": found.revoked.get(info["fingerprint"])}


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


def revoke(ws: Workspace, key: str, reason: str, operator: str) -> dict[str, Any]:
    """Revoke a pinned key (a fingerprint, or a certificate file): certificates it signs
    after this entry no longer verify; earlier ones still do (docs/design.md section 7)."""
    fingerprint = _fingerprint_of(key)
    if not reason.strip():
        raise UnpromptError("say why the key is revoked (--reason)")
    with ws.sessions.begin() as session:
        found = read_trust(session)
        if fingerprint not in found.pins:
            raise NotFoundError(f"no key with fingerprint {fingerprint} is pinned in the "
                                "audit log; see `keys show`")
        if fingerprint in found.revoked:
            raise RefusedError(f"key {fingerprint[:16]}… is already revoked (log entry "
                               f"{found.revoked[fingerprint]['seq']})")
        entry = auditlog.append(session, operator, "keys.revoked",
                                {"fingerprint": fingerprint, "reason": reason.strip()})
    return {"fingerprint": fingerprint, "reason": reason.strip(), "entry": entry.seq,
            "revoked_at": entry.timestamp}


def _fingerprint_of(key: str) -> str:
    text = key.strip().lower().replace(":", "")
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    return keys.certificate_fingerprint(keys.parse_certificate(_read(key)))


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
