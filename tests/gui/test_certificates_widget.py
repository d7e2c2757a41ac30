"""The Certificates screen: certifiable requests, certify as a worker job, verify a PDF by
opening or dropping it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

from gui.certificates_widget import CertificatesWidget
from gui.context import AppContext
from tests import approvals


def make(qtbot, ctx: AppContext) -> CertificatesWidget:  # noqa: ANN001
    widget = CertificatesWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture()
def signed_sample(workspace) -> Path:  # noqa: ANN001
    """A sample certificate signed with this workspace's key (generated through Unprompt,
    so pinned in the audit log; the certificate is not in its registry)."""
    from reports.key_admin import signing_identity
    from reports.manifest import build_manifest
    from reports.pdf_certificate import render_certificate_pdf
    from reports.signing import sign_pdf
    from tests.reports.sample import sample_facts

    identity = signing_identity(workspace, b"pass phrase", "alice")
    pdf = sign_pdf(render_certificate_pdf(build_manifest(sample_facts()), None), identity)
    path = workspace.root / "sample.pdf"
    path.write_bytes(pdf)
    return path


def test_lists_executed_requests(qtbot, ctx: AppContext, seeded: dict) -> None:  # noqa: ANN001
    screen = make(qtbot, ctx)
    assert screen.request_box.count() == 1
    assert screen.request_box.currentData() == seeded["executed"]
    assert screen.export_button.isEnabled()


def test_refused_request_explains_before_asking(qtbot, ctx: AppContext, seeded: dict,  # noqa: ANN001
                                                warnings_shown: list, monkeypatch) -> None:  # noqa: ANN001
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: asked.append("file") or ("", ""))
    screen = make(qtbot, ctx)
    screen.export_button.click()
    assert asked == []
    assert warnings_shown and "residual scan" in warnings_shown[0][1]


def test_certify_runs_in_the_worker_and_reports_failure(qtbot, engine_ctx: AppContext,  # noqa: ANN001
                                                        seeded: dict, warnings_shown: list,
                                                        tmp_path: Path) -> None:
    screen = make(qtbot, engine_ctx)
    out = tmp_path / "c.pdf"
    screen.start_certify(seeded["executed"], str(out), "pass phrase")
    assert not screen.export_button.isEnabled()
    qtbot.waitUntil(lambda: screen._job is None, timeout=30000)
    assert "Not certified" in screen.export_status.text()
    assert warnings_shown and "residual scan" in warnings_shown[-1][1]
    assert not out.exists()
    from storage.models import Job

    with engine_ctx.workspace.sessions() as session:  # the passphrase is never stored
        assert all("pass phrase" not in str(j.config) for j in session.query(Job))


def test_verify_shows_verdict_and_reasons(qtbot, ctx: AppContext,  # noqa: ANN001
                                          signed_sample: Path) -> None:
    screen = make(qtbot, ctx)
    result = screen.verify(str(signed_sample))
    assert result is not None and not result["valid"]
    assert result["reasons"] == ["not-in-registry"]
    assert "NOT VALID" in screen.verdict_label.text()
    texts = [screen.reasons_list.item(i).text() for i in range(screen.reasons_list.count())]
    assert "not-in-registry" in texts[0]
    assert texts[1:] == [f"note: {n}" for n in result["notes"]]
    assert any("not yet covered by a signed log checkpoint" in t for t in texts[1:])


def test_dropping_a_tampered_pdf_verifies_it(qtbot, ctx: AppContext,  # noqa: ANN001
                                             signed_sample: Path) -> None:
    data = bytearray(signed_sample.read_bytes())
    data[len(data) // 3] ^= 0x01
    signed_sample.write_bytes(bytes(data))
    screen = make(qtbot, ctx)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(signed_sample))])
    event = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    screen.dropEvent(event)
    texts = [screen.reasons_list.item(i).text() for i in range(screen.reasons_list.count())]
    assert "NOT VALID" in screen.verdict_label.text()
    assert any(t.startswith("signature-invalid") for t in texts), texts


def test_missing_file_is_one_sentence(qtbot, ctx: AppContext, warnings_shown: list,  # noqa: ANN001
                                      tmp_path: Path) -> None:
    screen = make(qtbot, ctx)
    assert screen.verify(str(tmp_path / "none.pdf")) is None
    assert warnings_shown and "does not exist" in warnings_shown[0][1]


def test_lists_executed_rule_requests_and_asks_for_the_guard_audit(
        qtbot, ctx: AppContext, workspace, warnings_shown: list, monkeypatch) -> None:  # noqa: ANN001
    from storage import rules as store

    sha = workspace.artifacts.put(b"classifier bytes", kind="prompt-classifier")
    fields = {"description": "", "examples": {}, "classifier_artifact": sha, "threshold": 0.5,
              "corruption": "gaussian_first_n", "corruption_params": {}, "sigma": 0.1,
              "calibration": {}, "trace": []}
    with workspace.sessions.begin() as session:
        model = store.register_language_model(session, "lm", None, None, {}, "ann")
        store.add_rule(session, model, "topic", fields, "ann")
        request = approvals.create_request(session, model_name="lm", rule="topic", subject="s",
                                      subject_key=approvals.key_of(workspace),
                                      legal_basis="GDPR Art. 17", operator="bob")
        approvals.approve(session, request.id, "carol")
        store.set_status(session, "topic", True, "dave", request.id)
        request_id = request.id
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    screen = make(qtbot, ctx)
    assert screen.request_box.findData(request_id) >= 0
    assert "rule topic (executed)" in screen.request_box.currentText()
    screen.export_button.click()
    assert warnings_shown and f"guard eval topic --request {request_id}" in warnings_shown[0][1]


def test_crafted_manifest_is_not_a_valid_certificate(qtbot, ctx: AppContext,  # noqa: ANN001
                                                     warnings_shown: list) -> None:
    """A signed PDF whose manifest.json is ``[]``: a verdict, not an internal error."""
    from reports.key_admin import signing_identity
    from reports.manifest import build_manifest
    from reports.pdf_certificate import render_certificate_pdf
    from reports.signing import sign_pdf
    from tests.reports.sample import sample_facts
    from tests.reports.test_verify_fuzz import embed

    identity = signing_identity(ctx.workspace, b"pass phrase", "alice")  # pinned in the log
    pdf = render_certificate_pdf(build_manifest(sample_facts()), None)
    path = ctx.workspace.root / "crafted.pdf"
    path.write_bytes(sign_pdf(embed(pdf, b"[]"), identity))
    screen = make(qtbot, ctx)
    result = screen.verify(str(path))
    assert result is not None and result["reasons"] == ["manifest-schema-invalid"]
    assert "not a valid Unprompt certificate" in screen.verdict_label.text()
    assert "manifest-schema-invalid" in screen.reasons_list.item(0).text()
    assert not warnings_shown
