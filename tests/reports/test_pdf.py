"""The certificate PDF: it renders, reads as a document, and carries its manifest."""

from __future__ import annotations

import io

import pytest

from reports.manifest import build_manifest, canonical_json, manifest_sha256
from reports.pdf_certificate import INFO_SHA, qr_payload, render_certificate_pdf
from tests.reports.pdftext import pdf_text, render_pages
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


def test_text_states_the_verdict(unsigned_pdf: bytes) -> None:
    flat = pdf_text(unsigned_pdf)
    assert "Class 'Sandal' was erased from model 'fashion' on 2026-11-23." in flat
    assert "Erasure kind: exact. Retrain-equivalent: the model is what training" in flat
    for heading in ("The request", "Purge and residual scan", "Audit against the retrain",
                    "Accountability", "How to verify"):
        assert heading in flat


def test_pages_render(unsigned_pdf: bytes) -> None:
    pages = render_pages(unsigned_pdf)
    assert len(pages) >= 4
    for page in pages:  # every page draws something: at least 1% of its pixels are not white
        grey = page.convert("L")
        inked = sum(count for level, count in enumerate(grey.histogram()) if level < 200)
        assert inked > 0.01 * grey.width * grey.height


def test_approximate_without_audit_or_charts() -> None:
    facts = sample_facts("approximate")
    facts["audit"] = None
    text = pdf_text(render_certificate_pdf(build_manifest(facts), None))
    assert "Erasure kind: approximate" in text and "Measured residual" in text
    assert "No audit was recorded" in text


@pytest.mark.parametrize("scheme,words", [
    (None, "salted SHA-256 of the reference"),
    ("hmac-sha256", "HMAC-SHA256 of the reference under the workspace's secret subject key"),
])
def test_the_subject_hash_is_described_as_computed(scheme: str | None, words: str) -> None:
    facts = sample_facts("exact")
    if scheme:
        facts["request"]["subject_ref_scheme"] = scheme
    text = pdf_text(render_certificate_pdf(build_manifest(facts), None))
    assert f"pseudonymised: {words}" in text
