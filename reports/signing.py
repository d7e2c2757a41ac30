"""PAdES signatures on certificates, and writing a signed certificate with its manifest.

``sign_pdf`` makes a PAdES baseline B-B signature (SubFilter ETSI.CAdES.detached, SHA-256)
with the workspace key; given a timestamp authority URL it adds an RFC 3161 signature
timestamp (B-T), which needs the network. ``write_certificate`` renders, signs and writes
``<name>.pdf`` plus ``<name>.json`` (the canonical manifest, so ``sha256sum`` of the JSON file
equals the manifest hash), both or neither (``write_files``), refusing to replace existing
files unless asked.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from reports.keys import SigningIdentity, check_validity
from reports.manifest import canonical_json, manifest_sha256
from storage.durable import fsync_path
from storage.errors import RefusedError, UnpromptError

FIELD_NAME = "UnpromptCertificateSignature"
REASON = "Erasure certificate issued by Unprompt"


@dataclass(frozen=True)
class WrittenCertificate:
    """What the registry records about an exported certificate (docs/design.md section 3)."""

    pdf_path: Path
    json_path: Path
    certificate_id: str
    manifest_sha256: str
    pdf_sha256: str
    signer_fingerprint: str


def sign_pdf(pdf_bytes: bytes, identity: SigningIdentity, timestamp_url: str | None = None
             ) -> bytes:
    """Sign the whole PDF (PAdES B-B; B-T with an RFC 3161 timestamp when a URL is given)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    check_validity(identity.certificate)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=REASON, name=identity.certificate.subject.rfc4514_string())
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
        out = signers.sign_pdf(writer, meta, signer=_signer(identity),
                               timestamper=_timestamper(timestamp_url))
    except UnpromptError:
        raise
    except Exception as exc:  # pyhanko raises several types; the operator needs one sentence
        raise UnpromptError(f"Could not sign the certificate: {_first_line(exc)}.") from exc
    return out.getvalue()


def write_certificate(out_pdf: Path, manifest: dict[str, Any],
                      charts_data: dict[str, Any] | None, identity: SigningIdentity, *,
                      overwrite: bool = False, timestamp_url: str | None = None
                      ) -> WrittenCertificate:
    """Render, sign and write ``out_pdf`` and ``out_pdf.with_suffix('.json')`` atomically."""
    from reports.pdf_certificate import render_certificate_pdf

    out_pdf = Path(out_pdf)
    json_path = out_pdf.with_suffix(".json")
    if not overwrite:
        _refuse_existing([out_pdf, json_path])
    pdf = render_certificate_pdf(manifest, charts_data, signer=_signer_label(identity))
    signed = sign_pdf(pdf, identity, timestamp_url)
    write_files({out_pdf: signed, json_path: canonical_json(manifest)}, overwrite=overwrite)
    return WrittenCertificate(out_pdf, json_path, manifest["certificate_id"],
                              manifest_sha256(manifest), hashlib.sha256(signed).hexdigest(),
                              identity.fingerprint)


def write_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write via a temporary file, fsync, then rename (or link, which never replaces)."""
    write_files({path: data}, overwrite=overwrite)


def write_files(files: dict[Path, bytes], *, overwrite: bool = False) -> None:
    """Write every file or none: folders are made, each file goes to a temporary file next to
    it (fsynced) and only when all are written are they renamed into place (linked when
    ``overwrite`` is false, which never replaces). On failure what this call made (files,
    folders) is removed again, so a failed command leaves nothing behind."""
    folders = _make_folders([Path(p).parent for p in files])
    temps: dict[Path, Path] = {}
    placed: list[Path] = []
    path = Path()
    try:
        for path, data in files.items():
            temps[Path(path)] = _write_temp(Path(path), data)
        for path, tmp in temps.items():
            (os.replace if overwrite else os.link)(tmp, path)
            placed.append(path)
        for folder in dict.fromkeys(p.parent for p in placed):
            fsync_path(folder)
    except BaseException as exc:
        _undo(placed if not overwrite else [], folders)
        if isinstance(exc, FileExistsError):
            raise RefusedError(f"{path} already exists; choose another name or allow "
                               "overwriting.") from exc
        if isinstance(exc, OSError):
            raise UnpromptError(f"Could not write {path}: {exc.strerror or exc}.") from exc
        raise
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _make_folders(folders: list[Path]) -> list[Path]:
    """Create the missing folders; returns those created, deepest first."""
    created: list[Path] = []
    for folder in dict.fromkeys(folders):
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _undo([], created)
            raise UnpromptError(f"Could not create the folder {folder}: "
                                f"{exc.strerror}.") from exc
        created += [f for f in missing if f not in created]
    return created


def _undo(paths: list[Path], folders: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # only if empty
        try:
            folder.rmdir()
        except OSError:
            pass


def _refuse_existing(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            raise RefusedError(f"{path} already exists; choose another name or allow "
                               "overwriting.")


def _signer(identity: SigningIdentity) -> Any:
    """A pyhanko SimpleSigner holding the identity's key, certificate and chain."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    der = identity.key.private_bytes(serialization.Encoding.DER,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

    def to_asn1(cert: Any) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    chain = SimpleCertificateStore.from_certs([to_asn1(c) for c in identity.chain])
    return signers.SimpleSigner(signing_cert=to_asn1(identity.certificate),
                                signing_key=asn1_keys.PrivateKeyInfo.load(der),
                                cert_registry=chain)


def _timestamper(url: str | None) -> Any:
    if not url:
        return None
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    return RequestsHTTPTimeStamper(url, timeout=10)


def _signer_label(identity: SigningIdentity) -> str:
    return f"{identity.subject} (certificate SHA-256 {identity.fingerprint[:16]}…)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")
