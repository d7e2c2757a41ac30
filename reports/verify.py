"""Verify a certificate PDF without trusting anything it says about itself.

Checks, each failure a named reason:
- the file is at most ``MAX_PDF_BYTES`` long (``file-too-large``), a PDF (``not-a-pdf``) with
  exactly one signature (``unsigned``, ``multiple-signatures``);
- the signature is cryptographically intact and valid (``signature-invalid``) and covers the
  whole file, nothing appended after signing (``modified-after-signing``);
- the signer certificate equals a pinned trusted certificate (``untrusted-signer``) and is
  acceptable for signing now (``signer-certificate-expired``, ``signer-certificate-rejected``);
- the embedded manifest exists and parses (``manifest-missing``, ``manifest-unreadable``),
  satisfies its schema (``manifest-schema-invalid``; checked before any field is read, so a
  crafted manifest is a verdict, never a crash), and its recomputed SHA-256 equals the hash
  in the signed document information (``manifest-hash-missing``, ``manifest-hash-mismatch``,
  ``certificate-id-mismatch``);
- with a registry lookup: the certificate is on record (``not-in-registry``,
  ``registry-unavailable``) and agrees with it (``registry-mismatch``); for a forget-rule
  certificate the rule still enforces the erasure as certified (``rule-missing``,
  ``rule-disabled``, ``rule-retrained``). A later certificate of the same request (exact
  after a retrain) is reported in ``superseded_by``; the earlier one stays valid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reports.keys import certificate_fingerprint, parse_certificate
from reports.manifest import canonical_json, manifest_sha256, validate_manifest
from reports.pdf_certificate import INFO_ID, INFO_SHA, MANIFEST_NAME
from storage.errors import UnpromptError

RegistryLookup = Callable[[str], dict[str, Any] | None]
MAX_PDF_BYTES = 64 * 1024 * 1024  # a certificate is well under 1 MiB; nothing larger is read


@dataclass
class VerifyResult:
    """The verdict: ``valid`` only when ``reasons`` is empty."""

    valid: bool
    reasons: list[str]
    manifest: dict[str, Any] | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": list(self.reasons), **self.details}


def verify_certificate_pdf(pdf_bytes: bytes, trusted_certs: list[Any],
                           registry_lookup: RegistryLookup | None = None) -> VerifyResult:
    """Verify signature, pinned signer, embedded manifest and (optionally) the registry.

    ``trusted_certs`` holds the pinned certificates (cryptography or asn1crypto objects, or
    PEM / DER bytes); ``registry_lookup(certificate_id)`` returns the registry's record
    (``manifest_sha256``, ``pdf_sha256``, ``signer_fingerprint``, ``request_id``) or None.
    """
    pinned = _pinned(trusted_certs)
    reasons: list[str] = []
    details: dict[str, Any] = {}
    with _quiet_pyhanko():
        reader = _open(pdf_bytes, reasons)
        if reader is None:
            return VerifyResult(False, reasons, None, details)
        _check_signature(reader, pinned, reasons, details)
        manifest = _check_manifest(reader, reasons, details)
    if manifest is not None and registry_lookup is not None:
        _check_registry(manifest, pdf_bytes, registry_lookup, reasons, details)
    unique = list(dict.fromkeys(reasons))
    return VerifyResult(not unique, unique, manifest, details)


def _open(pdf_bytes: bytes, reasons: list[str]) -> Any:
    from pyhanko.pdf_utils.reader import PdfFileReader

    if isinstance(pdf_bytes, bytes | bytearray) and len(pdf_bytes) > MAX_PDF_BYTES:
        reasons.append("file-too-large")
        return None
    if not isinstance(pdf_bytes, bytes | bytearray) or not pdf_bytes.lstrip()[:5] == b"%PDF-":
        reasons.append("not-a-pdf")
        return None
    try:
        reader = PdfFileReader(io.BytesIO(bytes(pdf_bytes)), strict=False)
        reader.root  # noqa: B018 - parse the catalog now, not halfway through the checks
        return reader
    except Exception:  # a damaged file can fail in many ways; all mean "not a PDF"
        reasons.append("not-a-pdf")
        return None


def _pinned(trusted_certs: list[Any]) -> dict[str, Any]:
    """Pinned certificates by SHA-256 fingerprint."""
    pinned = {}
    for item in trusted_certs or []:
        der = item.dump() if hasattr(item, "dump") else None
        cert = parse_certificate(der if der is not None else item)
        pinned[certificate_fingerprint(cert)] = cert
    return pinned


def _check_signature(reader: Any, pinned: dict[str, Any], reasons: list[str],
                     details: dict[str, Any]) -> None:
    try:
        signatures = reader.embedded_signatures
    except Exception:
        reasons.append("signature-invalid")
        return
    if not signatures:
        reasons.append("unsigned")
        return
    if len(signatures) > 1:
        reasons.append("multiple-signatures")
    embedded = signatures[-1]
    try:
        fingerprint = hashlib.sha256(embedded.signer_cert.dump()).hexdigest()
    except Exception:
        reasons.append("signature-invalid")
        return
    details["signer_fingerprint"] = fingerprint
    details["signer"] = embedded.signer_cert.subject.human_friendly
    if fingerprint not in pinned:
        reasons.append("untrusted-signer")
    if not _clean_padding(embedded):
        reasons.append("signature-invalid")
    _validate(embedded, pinned, fingerprint, reasons, details)


def _clean_padding(embedded: Any) -> bool:
    """Whether /Contents holds the CMS object followed by zero padding only: the padding is
    outside the signed byte range, so nothing may hide there."""
    from asn1crypto import parser

    try:
        contents = bytes(embedded.sig_object["/Contents"])
        _, _, _, header, body, trailer = parser.parse(contents)
    except Exception:
        return False
    return not contents[len(header) + len(body) + len(trailer):].strip(b"\x00")


def _validate(embedded: Any, pinned: dict[str, Any], fingerprint: str, reasons: list[str],
              details: dict[str, Any]) -> None:
    """pyhanko's cryptographic, coverage and trust checks against the pinned certificates."""
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature

    try:
        status = validate_pdf_signature(embedded, _context(pinned),
                                        key_usage_settings=_key_usage())
    except Exception:
        reasons.append("signature-invalid")
        return
    if not (status.intact and status.valid):
        reasons.append("signature-invalid")
        return
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        reasons.append("modified-after-signing")
    details["signed_at"] = _iso(status.signer_reported_dt)
    proven = _timestamp(status)
    details["timestamp"] = _iso(proven)
    if fingerprint in pinned:
        if not _valid_at(pinned[fingerprint], proven or dt.datetime.now(dt.UTC)):
            reasons.append("signer-certificate-expired")
        elif not status.trusted:
            reasons.append("signer-certificate-rejected")


@contextmanager
def _quiet_pyhanko() -> Iterator[None]:
    """pyhanko logs an untrusted signer with a traceback; the reasons already say it."""
    loggers = [logging.getLogger(n) for n in ("pyhanko", "pyhanko_certvalidator")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _context(pinned: dict[str, Any]) -> Any:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko_certvalidator import ValidationContext

    roots = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in pinned.values()]
    return ValidationContext(trust_roots=roots, allow_fetching=False,
                             revocation_mode="soft-fail")


def _key_usage() -> Any:
    from pyhanko.sign.validation import KeyUsageConstraints

    return KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"},
                               match_all_key_usages=False)


def _timestamp(status: Any) -> dt.datetime | None:
    """The signing time proven by an RFC 3161 timestamp whose authority chains to a pinned
    certificate (pin the TSA's root with ``trust_certificate``); None otherwise."""
    ts = status.timestamp_validity
    return ts.timestamp if ts is not None and ts.trusted else None


def _valid_at(cert: Any, when: dt.datetime) -> bool:
    """Validity period check; pinned anchors are not checked for it by the path validator.
    Without a timestamp (PAdES B-B) the signature must be checked while the certificate is
    valid; a B-T timestamp lets it verify after expiry."""
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _check_manifest(reader: Any, reasons: list[str], details: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """The embedded manifest, checked against its schema before any field is read: a
    crafted manifest (``[]``, wrongly typed fields) is "not a valid Unprompt certificate",
    never a crash. None unless it parses and satisfies the schema."""
    raw = _embedded_manifest(reader)
    if raw is None:
        reasons.append("manifest-missing")
        return None
    manifest = _parse_manifest(raw, reasons, details)
    if manifest is None:
        return None
    digest = manifest_sha256(manifest)
    details.update(certificate_id=manifest["certificate_id"], manifest_sha256=digest)
    recorded = _info_value(reader, INFO_SHA)
    if recorded is None:
        reasons.append("manifest-hash-missing")
    elif recorded != digest or canonical_json(manifest) != raw:
        reasons.append("manifest-hash-mismatch")
    if _info_value(reader, INFO_ID) != manifest["certificate_id"]:
        reasons.append("certificate-id-mismatch")
    return manifest


def _parse_manifest(raw: bytes, reasons: list[str], details: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """JSON that satisfies the schema its ``schema`` field names (and hashes), else None."""
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        reasons.append("manifest-unreadable")
        return None
    try:
        validate_manifest(manifest)
        manifest_sha256(manifest)  # NaN or Infinity satisfy "number" but are not JSON
    except (UnpromptError, RecursionError) as exc:
        reasons.append("manifest-schema-invalid")
        details["schema_error"] = (str(exc) if isinstance(exc, UnpromptError)
                                   else "the manifest is nested too deeply")
        return None
    return manifest


def _embedded_manifest(reader: Any) -> bytes | None:
    """The bytes of the attached ``manifest.json`` (None when absent or unreadable)."""
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
        for i in range(0, len(names) - 1, 2):
            if str(names[i]) == MANIFEST_NAME:
                return bytes(names[i + 1].get_object()["/EF"]["/F"].get_object().data)
    except Exception:
        return None
    return None


def _info_value(reader: Any, key: str) -> str | None:
    try:
        return str(reader.trailer["/Info"][key])
    except Exception:
        return None


def _check_registry(manifest: dict[str, Any], pdf_bytes: bytes, lookup: RegistryLookup,
                    reasons: list[str], details: dict[str, Any]) -> None:
    try:
        record = lookup(str(manifest.get("certificate_id")))
    except Exception as exc:
        reasons.append("registry-unavailable")
        details["registry_error"] = str(exc)
        return
    if record is None:
        reasons.append("not-in-registry")
        return
    actual = {"manifest_sha256": manifest_sha256(manifest),
              "pdf_sha256": hashlib.sha256(pdf_bytes).hexdigest(),
              "signer_fingerprint": details.get("signer_fingerprint"),
              "request_id": str((manifest.get("request") or {}).get("id")),
              "certificate_id": str(manifest.get("certificate_id"))}
    differ = [k for k, v in actual.items()
              if record.get(k) is not None and str(record[k]) != str(v)]
    if "manifest_sha256" not in record:
        differ.append("manifest_sha256 (not recorded)")
    if differ:
        reasons.append("registry-mismatch")
        details["registry_mismatch"] = differ
    if "rule" in record and isinstance(manifest.get("guard"), dict):
        _check_rule(manifest["guard"].get("rule") or {}, record["rule"], reasons, details)
    if record.get("superseded_by"):  # not a failure: it said what held when it was issued
        details["superseded_by"] = record["superseded_by"]


def _check_rule(certified: dict[str, Any], current: dict[str, Any] | None,
                reasons: list[str], details: dict[str, Any]) -> None:
    """A guard certificate holds only while its rule is enabled at the certified version
    with the certified classifier (the language model itself was never changed)."""
    if current is None:
        reasons.append("rule-missing")
        return
    details["rule"] = {"name": current.get("name"), "status": current.get("status"),
                       "certified_version": certified.get("version"),
                       "current_version": current.get("version")}
    if current.get("status") == "retired":  # a retrain made the request exact (section 18)
        details["rule"]["retired"] = True
        return
    if current.get("status") != "active":
        reasons.append("rule-disabled")
    if (current.get("version") != certified.get("version")
            or current.get("classifier_artifact") != certified.get("classifier_artifact")):
        reasons.append("rule-retrained")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
