"""The certificate PDF: it renders, reads as a document, and carries its manifest."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.manifest import build_manifest, canonical_json, manifest_sha256
from reports.pdf_certificate import INFO_SHA, qr_payload, render_certificate_pdf
from tests.reports.sample import sample_facts


def test_manifest_and_hash_are_embedded(unsigned_pdf: bytes, manifest: dict) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    from reports.verify import _embedded_manifest

    reader = PdfFileReader(io.BytesIO(unsigned_pdf))
    assert _embedded_manifest(reader) == canonical_json(manifest)
    assert str(reader.trailer["/Info"][INFO_SHA]) == manifest_sha256(manifest)


def test_qr_payload_names_id_and_hash(manifest: dict) -> None:
    payload = qr_payload(manifest["certificate_id"], manifest_sha256(manifest))
    assert manifest["certificate_id"] in payload and manifest_sha256(manifest) in payload


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_text_states_the_verdict(unsigned_pdf: bytes, tmp_path: Path) -> None:
    text = _text(unsigned_pdf, tmp_path)
    flat = " ".join(text.split())
    assert "Class 'Sandal' was erased from model 'fashion' on 2026-11-23." in flat
    assert "Erasure kind: exact by construction." in flat
    for heading in ("The request", "Purge and residual scan", "Audit against the retrain",
                    "Accountability", "How to verify"):
        assert heading in flat


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pages_render(unsigned_pdf: bytes, tmp_path: Path) -> None:
    (tmp_path / "c.pdf").write_bytes(unsigned_pdf)
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(tmp_path / "c.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    assert all(p.stat().st_size > 2000 for p in pages)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_approximate_without_audit_or_charts(tmp_path: Path) -> None:
    facts = sample_facts("approximate")
    facts["audit"] = None
    text = " ".join(_text(render_certificate_pdf(build_manifest(facts), None), tmp_path).split())
    assert "Erasure kind: approximate" in text and "Measured residual" in text
    assert "No audit was recorded" in text


def _text(pdf: bytes, tmp_path: Path) -> str:
    (tmp_path / "t.pdf").write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(tmp_path / "t.pdf"), "-"], check=True,
                         capture_output=True, text=True, timeout=60)
    return out.stdout


def _pypdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.mark.parametrize("scheme,words", [
    (None, "salted SHA-256 of the reference"),
    ("hmac-sha256", "HMAC-SHA256 of the reference under the workspace's secret subject key"),
])
def test_the_subject_hash_is_described_as_computed(scheme: str | None, words: str) -> None:
    facts = sample_facts("exact")
    if scheme:
        facts["request"]["subject_ref_scheme"] = scheme
    text = _pypdf_text(render_certificate_pdf(build_manifest(facts), None))
    assert f"pseudonymised: {words}" in text
