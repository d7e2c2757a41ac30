"""PAdES B-T: an RFC 3161 timestamp from a local test TSA (pyhanko's DummyTimeStamper
behind a loopback HTTP server), so the network code path runs offline."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reports.keys import SigningIdentity, _key_usage
from reports.signing import sign_pdf
from reports.verify import verify_certificate_pdf
from tests.reports.sample import org_identity


@pytest.fixture(scope="module")
def tsa() -> Iterator[tuple[str, x509.Certificate, dict]]:
    """``(url, tsa certificate, {"at": fixed time})``; set ``at`` to backdate tokens."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import tsp
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps import DummyTimeStamper

    key, cert = _tsa_certificate()
    fixed: dict = {"at": None}
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stamper = DummyTimeStamper(asn1_cert, asn1_keys.PrivateKeyInfo.load(der_key),
                                       fixed_dt=fixed["at"])
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", cert, fixed
    server.shutdown()
    thread.join(timeout=5)


def test_timestamped_signature_verifies(unsigned_pdf: bytes, identity: SigningIdentity,
                                        tsa: tuple) -> None:
    url, tsa_cert, _ = tsa
    signed = sign_pdf(unsigned_pdf, identity, timestamp_url=url)
    result = verify_certificate_pdf(signed, [identity.certificate, tsa_cert])
    assert (result.valid, result.reasons) == (True, [])
    assert result.details["timestamp"] is not None


def test_timestamp_keeps_an_expired_signer_valid(unsigned_pdf: bytes, tsa: tuple,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed (and timestamped) while the certificate was valid, verified after it expired."""
    url, tsa_cert, fixed = tsa
    expired = org_identity(days=-1)
    monkeypatch.setattr("reports.signing.check_validity", lambda cert: None)
    monkeypatch.setitem(fixed, "at", dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    signed = sign_pdf(unsigned_pdf, expired, timestamp_url=url)
    assert verify_certificate_pdf(signed, [expired.certificate, tsa_cert]).valid
    untrusted_tsa = verify_certificate_pdf(signed, [expired.certificate])
    assert untrusted_tsa.reasons == ["signer-certificate-expired"]


def _tsa_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the dummy is RSA-only
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now + dt.timedelta(days=400))
            .add_extension(_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def test_offline_verify_notes_a_timestamp_that_outlives_the_key(
        unsigned_pdf: bytes, tsa: tuple, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An auditor with the PDF and the two public certificates only: the expired signer is
    valid at signing, and the verdict says why."""
    from reports.certify_service import verify_offline

    url, tsa_cert, fixed = tsa
    expired = org_identity(days=-1)
    monkeypatch.setattr("reports.signing.check_validity", lambda cert: None)
    monkeypatch.setitem(fixed, "at", dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(sign_pdf(unsigned_pdf, expired, timestamp_url=url))
    files = []
    for name, cert in (("signer.pem", expired.certificate), ("tsa.pem", tsa_cert)):
        files.append(tmp_path / name)
        files[-1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = verify_offline(pdf, tuple(str(f) for f in files))
    assert out["valid"], out
    assert any(n.startswith("Valid at signing") and "RFC 3161" in n for n in out["notes"])
