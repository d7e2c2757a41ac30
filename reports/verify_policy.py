"""What a workspace adds to the verdict of reports/verify.py (docs/design.md section 7).

``verify_certificate_pdf`` judges a PDF against given trusted certificates. Here the
workspace's evidence refines that verdict, each step with a note saying why:
- trust: only certificates whose pinning is in the verified audit log (reports/trust.py);
  dropped files are ignored and named;
- another workspace's certificate (signer pinned with `keys trust` or given with --trust)
  is not expected in this registry: ``not-in-registry`` does not apply to it;
- an expired signer is valid at signing when a signed log checkpoint that covers the
  certificate's ``certificate.issued`` entry was made while the key was valid;
- a revoked key (`keys revoke`): a certificate stands only when it provably existed before
  the revocation (issued earlier in the log, or an RFC 3161 timestamp), otherwise
  ``signer-key-revoked``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy.orm import Session

from reports import checkpoints
from reports.checkpoint_tsa import proven_time
from reports.keys import certificate_fingerprint
from reports.log_check import covering_checkpoints
from reports.trust import LogTrust, pinned_certificates, read_trust
from reports.verify import VerifyResult, verify_certificate_pdf
from storage import auditlog, certificates
from storage.workspace import Workspace

REVOKED = "signer-key-revoked"


def verify_in_workspace(ws: Workspace, data: bytes, extra: list[Any] | None = None
                        ) -> tuple[VerifyResult, list[str]]:
    """The verdict with this workspace's pins, registry and log; plus notes."""
    extra = list(extra or [])
    with ws.sessions() as session:
        found = read_trust(session)
    pinned, ignored = pinned_certificates(ws.keys_dir, found)

    def lookup(certificate_id: str) -> dict[str, Any] | None:
        with ws.sessions() as session:
            return certificates.lookup(session, certificate_id)

    result = verify_certificate_pdf(data, pinned + extra, lookup)
    notes = _trust_notes(found, ignored, extra)
    fingerprint = result.details.get("signer_fingerprint")
    signer = next((c for c in pinned + extra if certificate_fingerprint(c) == fingerprint),
                  None)
    with ws.sessions() as session:
        context = _Context(ws, session, found, result, data, signer, pinned + extra)
        _pin_attested(context, notes)
        _foreign(context, notes)
        _expired(context, notes)
        _revoked(context, notes)
    notes += _superseded(result.details.get("superseded_by"))
    if (result.details.get("rule") or {}).get("retired"):
        notes.append("The forget rule this certificate describes was retired when a retrain "
                     "without the person's records made the request exact; the guard is no "
                     "longer needed for it.")
    return _final(result), notes


def _superseded(later: list[dict[str, Any]] | None) -> list[str]:
    """Say that a later certificate of the same request supersedes this one."""
    return [f"Superseded by certificate {c['certificate_id']} ({c.get('erasure_kind')} "
            f"erasure, issued {c['created_at'][:10]}): this one stays valid for what held "
            "when it was issued." for c in later or []]


class _Context:
    """What the refinement steps share."""

    def __init__(self, ws: Workspace, session: Session, found: LogTrust,
                 result: VerifyResult, data: bytes, signer: Any, trusted: list[Any]) -> None:
        self.ws, self.session, self.found, self.result = ws, session, found, result
        self.signer, self.trusted = signer, trusted
        self.fingerprint = result.details.get("signer_fingerprint")
        self.certificate_id = str(result.details.get("certificate_id"))
        self.pdf_sha256 = hashlib.sha256(data).hexdigest()

    def issued_entry(self) -> Any:
        """The log entry that issued exactly this file (in the verified part of the log)."""
        for entry, payload in auditlog.entries_of(self.session, ("certificate.issued",),
                                                  below=self.found.first_bad):
            if (payload.get("certificate") == self.certificate_id
                    and payload.get("pdf_sha256") == self.pdf_sha256):
                return entry
        return None


def _trust_notes(found: LogTrust, ignored: list[str], extra: list[Any]) -> list[str]:
    notes = []
    if ignored:
        notes.append(f"Ignored in keys/trusted/ (no pinning in the audit log; pin with "
                     f"`keys trust`): {', '.join(ignored)}.")
    if not found.chain_valid:
        notes.append(f"The audit log is broken at entry {found.first_bad}; only keys "
                     "pinned before it are trusted.")
    for cert in extra:
        notes.append(f"Trusted for this check only (--trust): SHA-256 "
                     f"{certificate_fingerprint(cert)[:16]}….")
    return notes


def _pin_attested(c: _Context, notes: list[str]) -> None:
    """Say when the signer's pinning is not yet covered by a signed checkpoint: the chain is
    not keyed, so until then whoever can write the registry could have appended it."""
    pin = c.found.pins.get(c.fingerprint or "")
    if pin is None or c.signer is None:
        return
    if not covering_checkpoints(c.ws, c.session, c.found, pin["seq"]):
        notes.append(f"The signer's pinning (log entry {pin['seq']}, {pin['action']}) is not "
                     "yet covered by a signed log checkpoint; `log checkpoint` attests it.")


def _foreign(c: _Context, notes: list[str]) -> None:
    """Another workspace's certificate is not in this registry, and need not be."""
    reasons = c.result.reasons
    if "not-in-registry" not in reasons or c.signer is None or c.fingerprint in c.found.own:
        return
    reasons.remove("not-in-registry")
    notes.append("Issued by another workspace (its signer is trusted here, not this "
                 "workspace's own key): this registry holds no record of it, so the "
                 "signature and the manifest were checked, not the registry.")


def timestamp_note(result: VerifyResult, signer: Any) -> list[str]:
    """The note for a signer that expired after an RFC 3161 timestamp proved the signing."""
    proven = result.details.get("timestamp")
    if signer is None or not proven or "signer-certificate-expired" in result.reasons:
        return []
    if dt.datetime.now(dt.UTC) <= signer.not_valid_after_utc:
        return []
    return [f"Valid at signing: the signing key expired on "
            f"{signer.not_valid_after_utc:%Y-%m-%d}; the RFC 3161 timestamp proves the "
            f"signature was made on {proven}, while it was valid."]


def _expired(c: _Context, notes: list[str]) -> None:
    """An expired signer whose signing time a checkpoint attests is valid at signing."""
    reasons = c.result.reasons
    notes += timestamp_note(c.result, c.signer)
    if "signer-certificate-expired" not in reasons or c.signer is None:
        return
    entry = c.issued_entry()
    if entry is None:
        return
    issued = dt.datetime.fromisoformat(entry.timestamp).replace(microsecond=0)
    for item in covering_checkpoints(c.ws, c.session, c.found, entry.seq):
        proven = proven_time(checkpoints.folder(c.ws) / item.name, c.trusted)
        if _attests(c, item, issued, proven):
            reasons.remove("signer-certificate-expired")
            at = proven.isoformat(timespec="seconds") if proven else item.body["signed_at"]
            by = (f"an RFC 3161 timestamp of the log checkpoint {item.name}" if proven else
                  f"the workspace's signed log checkpoint {item.name}")
            c.result.details["attested_signing"] = {"by": item.name, "at": at,
                                                    "timestamped": proven is not None}
            notes.append(f"Valid at signing: the signing key expired on "
                         f"{c.signer.not_valid_after_utc:%Y-%m-%d}, but {by} attests that "
                         f"this certificate was issued (log entry {entry.seq}) by {at}, "
                         "while the key was valid.")
            return


def _revoked(c: _Context, notes: list[str]) -> None:
    """After `keys revoke`, only certificates provably made before it stand."""
    revoked = c.found.revoked.get(c.fingerprint or "")
    if revoked is None:
        return
    when = dt.datetime.fromisoformat(revoked["at"])
    proven = c.result.details.get("timestamp")
    entry = c.issued_entry()
    if entry is not None and entry.seq < revoked["seq"]:
        notes.append(f"The signing key was revoked at log entry {revoked['seq']} "
                     f"({revoked['at'][:10]}); this certificate was issued before it, at "
                     f"entry {entry.seq}, so it stands.")
    elif proven and dt.datetime.fromisoformat(proven.replace("Z", "+00:00")) < when:
        notes.append(f"The signing key was revoked on {revoked['at'][:10]}; the RFC 3161 "
                     f"timestamp ({proven}) proves this certificate was signed before.")
    else:
        c.result.reasons.append(REVOKED)
        c.result.details["revoked"] = {"entry": revoked["seq"], "at": revoked["at"],
                                       "reason": revoked.get("reason")}


def _attests(c: _Context, item: Any, issued: dt.datetime, proven: dt.datetime | None
             ) -> bool:
    """A checkpoint made after the issue (same clock, or a timestamp), while both keys were
    valid, by a key not revoked before it."""
    at = proven or item.signed_at
    return ((proven is not None or at >= issued) and _valid_at(c.signer, at)
            and _valid_at(item.certificate, item.signed_at)
            and not _signed_after_revocation(c.found, item.fingerprint, item.seq))


def _signed_after_revocation(found: LogTrust, fingerprint: str, head_seq: int) -> bool:
    revoked = found.revoked.get(fingerprint)
    return revoked is not None and head_seq >= revoked["seq"]


def _valid_at(cert: Any, when: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _final(result: VerifyResult) -> VerifyResult:
    reasons = list(dict.fromkeys(result.reasons))
    return VerifyResult(not reasons, reasons, result.manifest, result.details)
