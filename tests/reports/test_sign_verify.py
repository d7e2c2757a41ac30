"""Signing and verification: every tampering, a foreign key and bad input get named reasons."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reports.keys import SigningIdentity
from reports.manifest import canonical_json, manifest_sha256
from reports.pdf_certificate import INFO_SHA, MANIFEST_NAME
from reports.signing import sign_pdf, write_certificate, write_files
from reports.verify import verify_certificate_pdf
from storage.errors import RefusedError, UnpromptError
from tests.reports.sample import org_identity, sample_charts


def test_signed_certificate_verifies(signed_pdf: bytes, identity: SigningIdentity,
                                     manifest: dict) -> None:
    result = verify_certificate_pdf(signed_pdf, [identity.certificate_pem])
    assert (result.valid, result.reasons) == (True, [])
    assert result.manifest == manifest
    assert result.details["signer_fingerprint"] == identity.fingerprint
    assert result.details["manifest_sha256"] == manifest_sha256(manifest)


def test_pades_subfilter(signed_pdf: bytes) -> None:
    assert b"/ETSI.CAdES.detached" in signed_pdf


def test_flipping_any_signed_byte_fails(signed_pdf: bytes, identity: SigningIdentity) -> None:
    for offset in _signed_offsets(signed_pdf, samples=14):
        tampered = bytearray(signed_pdf)
        tampered[offset] ^= 0x01
        result = verify_certificate_pdf(bytes(tampered), [identity.certificate])
        assert not result.valid, f"flipping byte {offset} went unnoticed"
        assert result.reasons


def test_manifest_edited_after_signing_fails(signed_pdf: bytes, identity: SigningIdentity,
                                             manifest: dict) -> None:
    forged = {**manifest, "operator": "mallory"}
    for update_hash in (False, True):
        result = verify_certificate_pdf(_replace_manifest(signed_pdf, forged, update_hash),
                                        [identity.certificate])
        assert not result.valid
        assert "modified-after-signing" in result.reasons
        assert ("manifest-hash-mismatch" in result.reasons) is not update_hash


def test_other_key_fails_unless_trusted(unsigned_pdf: bytes, identity: SigningIdentity,
                                        other_identity: SigningIdentity) -> None:
    foreign = sign_pdf(unsigned_pdf, other_identity)
    result = verify_certificate_pdf(foreign, [identity.certificate])
    assert result.reasons == ["untrusted-signer"]
    assert verify_certificate_pdf(foreign, []).reasons == ["untrusted-signer"]
    assert verify_certificate_pdf(foreign, [identity.certificate,
                                            other_identity.certificate]).valid


@pytest.mark.parametrize("data", [b"", b"hello world", b"%PDF-1.7\n garbage", b"\x00" * 64])
def test_not_a_pdf(data: bytes, identity: SigningIdentity) -> None:
    result = verify_certificate_pdf(data, [identity.certificate])
    assert (result.valid, result.reasons) == (False, ["not-a-pdf"])


def test_unsigned_pdf(unsigned_pdf: bytes, identity: SigningIdentity) -> None:
    assert verify_certificate_pdf(unsigned_pdf, [identity.certificate]).reasons == ["unsigned"]


def test_registry_cross_check(signed_pdf: bytes, identity: SigningIdentity,
                              manifest: dict) -> None:
    record = {"certificate_id": manifest["certificate_id"],
              "manifest_sha256": manifest_sha256(manifest), "request_id": 42,
              "pdf_sha256": hashlib.sha256(signed_pdf).hexdigest(),
              "signer_fingerprint": identity.fingerprint}
    trusted = [identity.certificate]
    assert verify_certificate_pdf(signed_pdf, trusted, lambda cid: record).valid
    assert verify_certificate_pdf(signed_pdf, trusted, lambda cid: None).reasons == [
        "not-in-registry"]
    other = {**record, "manifest_sha256": "0" * 64}
    result = verify_certificate_pdf(signed_pdf, trusted, lambda cid: other)
    assert result.reasons == ["registry-mismatch"]
    assert result.details["registry_mismatch"] == ["manifest_sha256"]


def test_write_certificate_writes_pdf_and_json_once(tmp_path: Path, identity: SigningIdentity,
                                                    manifest: dict) -> None:
    out = tmp_path / "certificates" / "UC-1.pdf"
    written = write_certificate(out, manifest, sample_charts(), identity)
    assert written.json_path.read_bytes() == canonical_json(manifest)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == written.pdf_sha256
    assert verify_certificate_pdf(out.read_bytes(), [identity.certificate]).valid
    with pytest.raises(RefusedError, match="already exists"):
        write_certificate(out, manifest, None, identity)
    write_certificate(out, manifest, None, identity, overwrite=True)
    assert sorted(p.name for p in out.parent.iterdir()) == ["UC-1.json", "UC-1.pdf"]


def test_certificate_pdf_that_cannot_be_written_leaves_no_json(
        tmp_path: Path, identity: SigningIdentity, manifest: dict) -> None:
    out = tmp_path / "UC-1.pdf"
    out.mkdir()  # a folder named like the PDF: replacing it fails
    (out / "keep").write_text("x")
    with pytest.raises(UnpromptError, match="Could not write"):
        write_certificate(out, manifest, None, identity, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["UC-1.pdf"]


def test_write_files_writes_all_or_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    first = tmp_path / "a" / "b" / "one.pdf"
    with pytest.raises(UnpromptError, match="blocker"):
        write_files({first: b"1", blocker / "two.csv": b"2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    write_files({first: b"1", tmp_path / "c" / "two.csv": b"2"})
    assert first.read_bytes() == b"1" and (tmp_path / "c" / "two.csv").read_bytes() == b"2"
    with pytest.raises(RefusedError, match="two.csv already exists"):
        write_files({tmp_path / "three.pdf": b"3", tmp_path / "c" / "two.csv": b"2"})
    assert not (tmp_path / "three.pdf").exists()


def test_unreachable_timestamp_authority_is_one_sentence(unsigned_pdf: bytes,
                                                          identity: SigningIdentity) -> None:
    with pytest.raises(UnpromptError, match="Could not sign"):
        sign_pdf(unsigned_pdf, identity, timestamp_url="http://127.0.0.1:9/tsa")


def test_expired_key_does_not_sign(unsigned_pdf: bytes) -> None:
    with pytest.raises(RefusedError, match="expired"):
        sign_pdf(unsigned_pdf, org_identity(days=-1))


def test_signature_by_expired_certificate_is_named(unsigned_pdf: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    expired = org_identity(days=-1)
    monkeypatch.setattr("reports.signing.check_validity", lambda cert: None)
    result = verify_certificate_pdf(sign_pdf(unsigned_pdf, expired), [expired.certificate])
    assert result.reasons == ["signer-certificate-expired"]


def test_reports_import_neither_qt_nor_torch() -> None:
    code = ("import sys, importlib, pkgutil, reports\n"
            "for i in pkgutil.walk_packages(reports.__path__, 'reports.'):\n"
            "    importlib.import_module(i.name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'PySide6', 'pyqtgraph', 'superqt', 'gui'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def _signed_offsets(pdf: bytes, samples: int) -> list[int]:
    """Offsets spread over both parts of the signature's /ByteRange, ends included."""
    a, b, c, d = map(int, re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)",
                                    pdf).groups())
    assert c + d == len(pdf)
    half = samples // 2
    first = [a + (b - 1) * i // (half - 1) for i in range(half)]
    second = [c + (d - 1) * i // (half - 1) for i in range(half)]
    return first + second


def _replace_manifest(pdf: bytes, forged: dict, update_hash: bool) -> bytes:
    """An incremental update that swaps the attached manifest (and maybe the hash field)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    index = [str(names[i]) for i in range(0, len(names), 2)].index(MANIFEST_NAME)
    ref = names[2 * index + 1].get_object()["/EF"].raw_get("/F")
    stream = ref.get_object()
    stream._data, stream._encoded_data = canonical_json(forged), None
    writer.mark_update(ref)
    if update_hash:
        info_ref = writer.trailer.raw_get("/Info")
        info_ref.get_object()[INFO_SHA] = generic.TextStringObject(manifest_sha256(forged))
        writer.mark_update(info_ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
