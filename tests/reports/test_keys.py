"""The workspace signing key: generation, reload, trust pins, import and clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from reports import keys
from storage.errors import NotFoundError, RefusedError, UnpromptError
from tests.reports.sample import org_identity


def test_generated_key_reloads_with_its_passphrase(tmp_path: Path) -> None:
    first = keys.ensure_signing_key(tmp_path / "keys", b"pw")
    again = keys.ensure_signing_key(tmp_path / "keys", b"pw")
    assert again.fingerprint == first.fingerprint
    assert (tmp_path / "keys" / "signing.p12").exists()
    assert keys.signing_certificate(tmp_path / "keys") == first.certificate
    assert [keys.certificate_fingerprint(c) for c in keys.trusted_certificates(
        tmp_path / "keys")] == [first.fingerprint]


def test_certificate_carries_document_signing_usage(identity: keys.SigningIdentity) -> None:
    ext = identity.certificate.extensions
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert keys.DOCUMENT_SIGNING in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    lifetime = identity.certificate.not_valid_after_utc - identity.certificate.not_valid_before_utc
    assert lifetime > dt.timedelta(days=3 * 364)


def test_wrong_passphrase_is_named(keys_dir: Path, identity: keys.SigningIdentity) -> None:
    with pytest.raises(UnpromptError, match="wrong passphrase"):
        keys.load_signing_key(keys_dir, b"not the passphrase")


def test_damaged_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnpromptError, match="damaged"):
        keys.import_pkcs12(tmp_path, b"\x30\x03garbage", b"pw")


def test_missing_key_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        keys.load_signing_key(tmp_path / "nothing", b"pw")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnpromptError, match="passphrase is required"):
        keys.ensure_signing_key(tmp_path / "keys", b"")


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "s3cret")
    assert keys.passphrase_from_env() == b"s3cret"
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    assert keys.passphrase_from_env() is None


def test_imported_organisation_key_signs_and_both_stay_trusted(tmp_path: Path) -> None:
    own = keys.ensure_signing_key(tmp_path / "keys", b"pw")
    org = keys.import_pkcs12(tmp_path / "keys", _p12(days=365), b"pw")
    assert keys.load_signing_key(tmp_path / "keys", b"pw").fingerprint == org.fingerprint
    pinned = {keys.certificate_fingerprint(c) for c in keys.trusted_certificates(
        tmp_path / "keys")}
    assert pinned == {own.fingerprint, org.fingerprint}
    assert len(list((tmp_path / "keys" / "retired").glob("*.p12"))) == 1


def test_expired_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="expired"):
        keys.import_pkcs12(tmp_path / "keys", _p12(days=-1), b"pw")


def test_certificate_that_cannot_sign_is_refused(tmp_path: Path) -> None:
    org = org_identity(365, key_usage=False)
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    cert = (x509.CertificateBuilder().subject_name(org.certificate.subject)
            .issuer_name(org.certificate.issuer).public_key(org.key.public_key())
            .serial_number(1).not_valid_before(org.certificate.not_valid_before_utc)
            .not_valid_after(org.certificate.not_valid_after_utc)
            .add_extension(usage, critical=True).sign(org.key, hashes.SHA256()))
    blob = pkcs12.serialize_key_and_certificates(
        b"org", org.key, cert, None, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(RefusedError, match="key usage"):
        keys.import_pkcs12(tmp_path / "keys", blob, b"pw")


def test_trust_certificate_accepts_pem_and_rejects_junk(tmp_path: Path,
                                                        identity: keys.SigningIdentity) -> None:
    assert keys.trust_certificate(tmp_path, identity.certificate_pem) == identity.fingerprint
    with pytest.raises(UnpromptError, match="not an X.509 certificate"):
        keys.trust_certificate(tmp_path, b"hello")


def _p12(days: int) -> bytes:
    """An organisation PKCS#12 whose certificate ends ``days`` from now."""
    org = org_identity(days)
    return pkcs12.serialize_key_and_certificates(
        b"org", org.key, org.certificate, None, serialization.BestAvailableEncryption(b"pw"))
