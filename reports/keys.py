"""The workspace signing key and the pinned trusted certificates (docs/design.md sections 2, 7).

Layout of ``<workspace>/keys/``::

    signing.p12    the signing key and its certificate, PKCS#12 protected by a passphrase
    signing.crt    the same certificate as PEM, readable without the passphrase
    trusted/       pinned certificates (PEM, named by SHA-256 fingerprint); ``verify`` accepts
                   a signature only when its signer certificate is one of these and its
                   pinning is in the audit log (reports/trust.py)
    retired/       earlier signing keys, moved aside when an organisation key is imported

The generated certificate is a self-signed end-entity certificate (basicConstraints CA=false,
critical), ECDSA P-256 with SHA-256, valid three years, with keyUsage digitalSignature +
contentCommitment (nonRepudiation) and extendedKeyUsage emailProtection + documentSigning
(RFC 9336), which is what PDF validators (pyHanko, Adobe) look for on a document signer. Trust
comes from pinning, not from a CA hierarchy, so no CA certificate is involved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import asn1crypto.tsp  # noqa: F401 - registers the timestamp OIDs before any CMS parsing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from storage.artifacts import atomic_write
from storage.errors import NotFoundError, RefusedError, UnpromptError

PASSPHRASE_ENV = "UNPROMPT_KEY_PASSPHRASE"
P12_NAME = "signing.p12"
CRT_NAME = "signing.crt"
VALIDITY_DAYS = 3 * 365
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True)
class SigningIdentity:
    """A private key with its certificate (and any chain certificates from a PKCS#12)."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER bytes, hex; recorded with every certificate."""
        return certificate_fingerprint(self.certificate)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of a certificate's DER encoding, lowercase hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def passphrase_from_env() -> bytes | None:
    """The key passphrase from ``UNPROMPT_KEY_PASSPHRASE``; ``None`` when unset (ask then)."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def ensure_signing_key(keys_dir: Path, passphrase: bytes,
                       common_name: str = "Unprompt workspace signing key") -> SigningIdentity:
    """Load the workspace signing key, generating key, certificate and trust pin on first use."""
    keys_dir = Path(keys_dir)
    if (keys_dir / P12_NAME).exists():
        return load_signing_key(keys_dir, passphrase)
    _check_passphrase(passphrase)
    key = ec.generate_private_key(ec.SECP256R1())
    identity = SigningIdentity(key, _self_signed_certificate(key, common_name))
    try:
        _store_identity(keys_dir, identity, passphrase)
    except BaseException:
        discard_signing_key(keys_dir, identity.fingerprint)
        raise
    return identity


def load_signing_key(keys_dir: Path, passphrase: bytes) -> SigningIdentity:
    """Open ``signing.p12``; clear errors for a missing, damaged, locked or expired key."""
    path = Path(keys_dir) / P12_NAME
    if not path.exists():
        raise NotFoundError(f"No signing key in {keys_dir}; create one with certify first "
                            "or import an organisation PKCS#12.")
    identity = _read_pkcs12(path.read_bytes(), passphrase, str(path))
    check_validity(identity.certificate)
    return identity


def import_pkcs12(keys_dir: Path, p12_bytes: bytes, passphrase: bytes) -> SigningIdentity:
    """Make an organisation's PKCS#12 the signing key; its certificate becomes trusted.

    The previous key (if any) moves to ``retired/`` and its certificate stays trusted, so
    certificates signed earlier still verify. The key is stored under the same passphrase.
    """
    identity = _read_pkcs12(p12_bytes, passphrase, "the imported file")
    check_validity(identity.certificate)
    _check_key_usage(identity.certificate)
    keys_dir = Path(keys_dir)
    old = keys_dir / P12_NAME
    if old.exists():
        retired = keys_dir / "retired"
        retired.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        shutil.move(str(old), retired / f"signing-{stamp}.p12")
    _store_identity(keys_dir, identity, passphrase)
    return identity


def trust_certificate(keys_dir: Path, pem: bytes) -> str:
    """Pin a certificate (PEM or DER) as trusted for verification; returns its fingerprint."""
    cert = parse_certificate(pem)
    fingerprint = certificate_fingerprint(cert)
    folder = Path(keys_dir) / "trusted"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{fingerprint}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint


def trusted_certificates(keys_dir: Path) -> list[x509.Certificate]:
    """Every pinned certificate in ``keys/trusted/`` (empty when there is none)."""
    folder = Path(keys_dir) / "trusted"
    if not folder.is_dir():
        return []
    return [parse_certificate(p.read_bytes()) for p in sorted(folder.glob("*.pem"))]


def signing_certificate(keys_dir: Path) -> x509.Certificate:
    """The signing certificate from ``signing.crt``, readable without the passphrase."""
    path = Path(keys_dir) / CRT_NAME
    if not path.exists():
        raise NotFoundError(f"No signing certificate in {keys_dir}.")
    return parse_certificate(path.read_bytes())


def parse_certificate(data: bytes | str | x509.Certificate) -> x509.Certificate:
    """A certificate from PEM or DER bytes (or one already parsed)."""
    if isinstance(data, x509.Certificate):
        return data
    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise UnpromptError("The file is not an X.509 certificate (PEM or DER).") from exc


def check_validity(cert: x509.Certificate, at: dt.datetime | None = None) -> None:
    """Refuse a certificate that has expired or is not valid yet."""
    now = at or dt.datetime.now(dt.UTC)
    if now > cert.not_valid_after_utc:
        raise RefusedError(f"The signing certificate expired on "
                           f"{cert.not_valid_after_utc:%Y-%m-%d}; import a new key.")
    if now < cert.not_valid_before_utc:
        raise RefusedError(f"The signing certificate is not valid before "
                           f"{cert.not_valid_before_utc:%Y-%m-%d}.")


def _check_passphrase(passphrase: bytes) -> None:
    if not passphrase:
        raise UnpromptError(f"A key passphrase is required; set {PASSPHRASE_ENV}.")


def _check_key_usage(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise RefusedError("The certificate's key usage allows neither digital signatures "
                           "nor non-repudiation, so it cannot sign certificates.")


def _self_signed_certificate(key: ec.EllipticCurvePrivateKey, common_name: str
                             ) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Unprompt")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                              DOCUMENT_SIGNING]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=True,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _store_identity(keys_dir: Path, identity: SigningIdentity, passphrase: bytes) -> None:
    """Write signing.p12, signing.crt and the trust pin (each atomically)."""
    _check_passphrase(passphrase)
    keys_dir.mkdir(parents=True, exist_ok=True)
    blob = pkcs12.serialize_key_and_certificates(
        b"unprompt-signing", identity.key, identity.certificate, list(identity.chain) or None,
        serialization.BestAvailableEncryption(passphrase))
    atomic_write(keys_dir / P12_NAME, blob)
    os.chmod(keys_dir / P12_NAME, 0o600)
    atomic_write(keys_dir / CRT_NAME, identity.certificate_pem)
    trust_certificate(keys_dir, identity.certificate_pem)


def _read_pkcs12(data: bytes, passphrase: bytes, where: str) -> SigningIdentity:
    """Decrypt a PKCS#12; tell a wrong passphrase apart from a damaged file."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase or None)
    except (ValueError, TypeError) as exc:
        if _looks_like_pkcs12(data):
            raise UnpromptError(f"Could not open {where}: wrong passphrase "
                                "(or the key file is damaged).") from exc
        raise UnpromptError(f"Not a readable PKCS#12 key file: {where} (damaged?).") from exc
    if key is None or cert is None:
        raise UnpromptError(f"No private key with its certificate in {where}.")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnpromptError(f"Unsupported key type (not RSA or EC) in {where}.")
    return SigningIdentity(key, cert, tuple(extra))


def _looks_like_pkcs12(data: bytes) -> bool:
    """Whether the bytes parse as a PKCS#12 structure (then the passphrase is the problem)."""
    from asn1crypto import pkcs12 as asn1_pkcs12

    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        pfx["auth_safe"]["content"].native  # noqa: B018 - forces a full parse
        return True
    except Exception:  # noqa: BLE001 - any parse failure means "damaged"
        return False


def discard_signing_key(keys_dir: Path, fingerprint: str) -> None:
    """Remove a signing key that was generated by a command that then failed (its PKCS#12,
    certificate and trust pin), so that the failed command leaves no key behind. Files of any
    other key are left alone."""
    keys_dir = Path(keys_dir)
    crt = keys_dir / CRT_NAME
    try:
        if crt.exists() and certificate_fingerprint(parse_certificate(
                crt.read_bytes())) != fingerprint:
            return
        for path in (keys_dir / P12_NAME, crt, keys_dir / "trusted" / f"{fingerprint}.pem"):
            path.unlink(missing_ok=True)
    except (OSError, UnpromptError):
        pass  # best effort: the command's own error is the one to report
