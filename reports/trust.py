"""Which keys a workspace trusts, read from its verified audit log (docs/design.md section 7).

A key is trusted only when its pinning is in the hash-chained log: ``keys.generated`` and
``keys.imported`` name the workspace's own signing keys, ``keys.trusted`` a partner's pinned
certificate; ``keys.discarded`` (a key generated for a command that failed) unpins it again.
A ``*.pem`` dropped into ``keys/trusted/`` without such an entry is ignored (and
``verify`` says so). ``keys.revoked`` marks a compromised key: certificates it signed later
than the revocation no longer verify. Only entries before the first broken link of the chain
count, so an edited log cannot pin a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from reports import keys
from storage import auditlog
from storage.errors import UnpromptError

OWN_ACTIONS = ("keys.generated", "keys.imported")
PIN_ACTIONS = (*OWN_ACTIONS, "keys.trusted")


@dataclass
class LogTrust:
    """Pins and revocations by certificate fingerprint, from the verified log."""

    pins: dict[str, dict[str, Any]] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)
    chain_valid: bool = True
    first_bad: int | None = None

    def is_pinned(self, fingerprint: str | None) -> bool:
        return fingerprint in self.pins


def read_trust(session: Session, chain: auditlog.ChainReport | None = None) -> LogTrust:
    """The pins and revocations of the log's verified part (``chain``: its verification,
    when the caller already has it)."""
    chain = chain or auditlog.verify(session)
    trust = LogTrust(chain_valid=chain.valid, first_bad=chain.first_bad)
    actions = (*PIN_ACTIONS, "keys.revoked", "keys.discarded")
    for entry, payload in auditlog.entries_of(session, actions, below=chain.first_bad):
        fingerprint = str(payload.get("fingerprint", "")).lower()
        where = {"seq": entry.seq, "at": entry.timestamp, "actor": entry.actor}
        if entry.action == "keys.revoked":
            trust.revoked.setdefault(fingerprint, {**where, "reason": payload.get("reason")})
            continue
        if entry.action == "keys.discarded":  # generated for a command that then failed
            trust.pins.pop(fingerprint, None)
            trust.own.discard(fingerprint)
            continue
        trust.pins.setdefault(fingerprint, {**where, "action": entry.action})
        if entry.action in OWN_ACTIONS:
            trust.own.add(fingerprint)
    return trust


def pinned_certificates(keys_dir: Path, trust: LogTrust) -> tuple[list[Any], list[str]]:
    """``(certificates whose pinning is logged, names of the ignored files)``."""
    folder = Path(keys_dir) / "trusted"
    certs: list[Any] = []
    ignored: list[str] = []
    for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
        try:
            cert = keys.parse_certificate(path.read_bytes())
        except (OSError, ValueError, UnpromptError):
            ignored.append(path.name)
            continue
        if trust.is_pinned(keys.certificate_fingerprint(cert)):
            certs.append(cert)
        else:
            ignored.append(path.name)
    return certs, ignored
