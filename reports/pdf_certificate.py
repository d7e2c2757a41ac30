"""The erasure certificate as a PDF (reportlab platypus), with its manifest embedded.

``render_certificate_pdf`` lays out a title page (the verdict in one sentence, key facts,
a QR code with the certificate id and manifest SHA-256) and the numbered sections of
reports/pdf_sections.py, then appends an incremental update that attaches the canonical
manifest as ``manifest.json`` and records its hash in the document information dictionary
(``/UnpromptManifestSHA256``). Signing (reports/signing.py) covers all of it.
"""

from __future__ import annotations

import io
from typing import Any

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, SimpleDocTemplate, Spacer, Table, TableStyle

from reports import pdf_guard
from reports import pdf_sections as sec
from reports.manifest import canonical_json, manifest_sha256, validate_manifest
from reports.pdf_style import (
    ACCENT,
    FRAME_WIDTH,
    PAGE_MARGIN,
    SHADE,
    fonts,
    key_value_table,
    markup,
    p,
    page_header,
)
from storage.artifact_store import purge_clause

MANIFEST_NAME = "manifest.json"
INFO_SHA = "/UnpromptManifestSHA256"
INFO_ID = "/UnpromptCertificateId"
INFO_SCHEMA = "/UnpromptManifestSchema"


def render_certificate_pdf(manifest: dict[str, Any], charts_data: dict[str, Any] | None = None,
                           *, signer: str | None = None) -> bytes:
    """The unsigned certificate PDF for a validated manifest (``signer`` names the key that
    will sign it, for the title page)."""
    validate_manifest(manifest)
    digest = manifest_sha256(manifest)
    buffer = io.BytesIO()
    doc = _document(buffer, manifest)
    story = _title_page(manifest, digest, signer) + [PageBreak()] + _body(manifest, charts_data,
                                                                           digest)
    decorate = _page_decoration(manifest["certificate_id"], digest)
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return embed_manifest(buffer.getvalue(), manifest, digest)


def qr_payload(certificate_id: str, digest: str) -> str:
    """What the QR code holds: ``unprompt-cert:<id>;sha256=<manifest sha256>``."""
    return f"unprompt-cert:{certificate_id};sha256={digest}"


def embed_manifest(pdf: bytes, manifest: dict[str, Any], digest: str) -> bytes:
    """Attach the canonical manifest and record its hash in the document information."""
    from pyhanko.pdf_utils import embed, generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    data = embed.EmbeddedFileObject.from_file_data(
        writer, canonical_json(manifest), mime_type="application/json",
        params=embed.EmbeddedFileParams(embed_size=True, embed_checksum=True))
    embed.embed_file(writer, embed.FileSpec(
        file_spec_string=MANIFEST_NAME, file_name=MANIFEST_NAME, embedded_data=data,
        description="Certificate manifest (canonical JSON); SHA-256 " + digest))
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info[generic.pdf_name(INFO_SHA)] = generic.TextStringObject(digest)
    info[generic.pdf_name(INFO_ID)] = generic.TextStringObject(manifest["certificate_id"])
    info[generic.pdf_name(INFO_SCHEMA)] = generic.TextStringObject(manifest["schema"])
    writer.mark_update(info_ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _document(buffer: io.BytesIO, m: dict[str, Any]) -> SimpleDocTemplate:
    return SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=PAGE_MARGIN, rightMargin=PAGE_MARGIN,
        topMargin=PAGE_MARGIN + 4 * mm, bottomMargin=PAGE_MARGIN,
        title=f"Erasure certificate {m['certificate_id']}", author=m["operator"],
        subject=sec.verdict_sentence(m), creator=f"Unprompt {m['software'].get('unprompt')}",
        keywords=["erasure certificate", m["certificate_id"]], lang="en")


def _title_page(m: dict[str, Any], digest: str, signer: str | None) -> list[Flowable]:
    facts = pdf_guard.title_facts(m) if pdf_guard.is_guard(m) else _class_facts(m)
    facts.insert(-1, ("Audit", _audit_word(m.get("audit"))))
    statement = pdf_guard.statement(m) if pdf_guard.is_guard(m) else _statement(m)
    kicker = ("LANGUAGE-MODEL FORGET RULE: SUPPRESSION AT INFERENCE" if pdf_guard.is_guard(m)
              else "MACHINE-LEARNING ERASURE")
    return [Spacer(1, 10 * mm), p(f"UNPROMPT  ·  {kicker}", "kicker"),
            p("Certificate of erasure", "title"), _verdict_box(m), Spacer(1, 8 * mm),
            _facts_with_qr(facts, m["certificate_id"], digest), Spacer(1, 8 * mm),
            markup(statement), Spacer(1, 2 * mm), markup(_signature_note(signer), "small")]


def _class_facts(m: dict[str, Any]) -> list[tuple[str, str]]:
    t = m["timeline"]
    return [("Certificate", m["certificate_id"]),
             ("Request", f"#{m['request']['id']}, received {t['received_at'][:10]}"),
             ("Legal basis", m["request"]["legal_basis"]),
             ("Model", f"{m['model']['name']}, version {m['model']['version_after']}"),
             ("Executed", f"{t['executed_at'][:10]} by {m['operator']}"),
             ("Approved by", m["approver"] or "none recorded"),
             ("Residual scan", "clean" if m["residual_scan"]["clean"] else "NOT clean"),
             ("Certified", t["certified_at"][:10])]


def _verdict_box(m: dict[str, Any]) -> Table:
    text = [p(sec.verdict_sentence(m), "verdict"), p(sec.kind_sentence(m), "verdict")]
    if pdf_guard.is_guard(m):
        text.append(p(pdf_guard.condition_sentence(m), "verdict"))
    warning = sec.warning_sentence(m)
    if warning:
        text.append(markup(f"<font color='#b3261e'>{_x(warning)}</font>", "verdict"))
    box = Table([[text]], colWidths=[FRAME_WIDTH])
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), SHADE),
                             ("LINEBEFORE", (0, 0), (0, -1), 3, ACCENT),
                             ("LEFTPADDING", (0, 0), (-1, -1), 10),
                             ("TOPPADDING", (0, 0), (-1, -1), 9),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 5)]))
    return box


def _facts_with_qr(facts: list[tuple[str, str]], cert_id: str, digest: str) -> Table:
    qr_size = 40 * mm
    left = key_value_table(facts, (30 * mm, FRAME_WIDTH - qr_size - 38 * mm))
    right = [_qr(qr_payload(cert_id, digest), qr_size),
             p("Certificate id and manifest SHA-256", "small")]
    table = Table([[left, right]], colWidths=[FRAME_WIDTH - qr_size - 6 * mm, qr_size + 6 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _qr(value: str, size: float) -> Drawing:
    widget = QrCodeWidget(value, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def _statement(m: dict[str, Any]) -> str:
    req, t, model = m["request"], m["timeline"], m["model"]
    what = ("the erased classes' parameters were removed" if m["scope"]["kind"] == "classes"
            else "the forget rule took effect")
    if m["erasure"].get("mechanism") == "retrain":
        what = ("the model was fine-tuned again without the person's records"
                if m["scope"]["kind"] == "rule" else
                "the model was retrained without the erased classes")
    purge = (purge_clause(m["purge"].get("store")) if m["purge"].get("complete", True)
             else "the purge of earlier stored copies is NOT complete")
    scan = "no" if m["residual_scan"]["clean"] else "REMAINING"
    return (f"This certificate attests that erasure request #{req['id']}, received on "
            f"{t['received_at'][:10]} under the legal basis “{_x(req['legal_basis'])}”, was "
            f"executed on {t['executed_at'][:10]} on model “{_x(model['name'])}”: {what} in "
            f"version {model['version_after']}, {purge}, and a scan of the workspace found "
            f"{scan} bytes of them. The following pages give the timeline, the method, the "
            "artifact hashes, the audit figures and how to verify this document.")


def _signature_note(signer: str | None) -> str:
    who = f" with the key of {_x(signer)}" if signer else ""
    return (f"This document is signed electronically (PAdES){who}. The signature covers the "
            "whole file, including the attached machine-readable manifest.")


def _audit_word(audit: dict[str, Any] | None) -> str:
    if not audit:
        return "none recorded"
    verdict = {True: "passed", False: "FAILED", None: "recorded"}[audit.get("passed")]
    if audit.get("kind") == "guard":
        return {None: "not assessed (some figures not measured)"}.get(audit.get("passed"),
                                                                      f"{verdict} (guard audit)")
    return f"{verdict}, compared with a retrain reference" if audit.get("reference") \
        else verdict


def _body(m: dict[str, Any], charts_data: dict[str, Any] | None, digest: str
          ) -> list[Flowable]:
    if pdf_guard.is_guard(m):
        return [*sec.request_section(m), *pdf_guard.erasure_section(m),
                *pdf_guard.rule_section(m), *pdf_guard.audit_section(m),
                *sec.accountability_section(m, 5),
                *sec.verification_section(digest, 6, pdf_guard.registry_step(m)),
                PageBreak(), *sec.manifest_appendix(m)]
    return [*sec.request_section(m), *sec.erasure_section(m), *sec.artifacts_section(m),
            *sec.purge_section(m), *sec.audit_section(m, charts_data),
            *sec.accountability_section(m), *sec.verification_section(digest),
            PageBreak(), *sec.manifest_appendix(m)]


def _page_decoration(cert_id: str, digest: str):  # noqa: ANN202 - reportlab page callback
    mono = fonts()[1]

    def draw(canvas: Any, doc: Any) -> None:
        width, _ = A4
        canvas.saveState()
        page_header(canvas, f"Unprompt erasure certificate {cert_id}", doc.page)
        canvas.line(PAGE_MARGIN, PAGE_MARGIN - 4 * mm, width - PAGE_MARGIN,
                    PAGE_MARGIN - 4 * mm)
        canvas.setFont(mono, 6.5)
        canvas.drawString(PAGE_MARGIN, PAGE_MARGIN - 8 * mm, f"Manifest SHA-256 {digest}")
        canvas.restoreState()

    return draw


def _x(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
