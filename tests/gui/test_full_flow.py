"""The operator's whole flow through the widgets, with the real engine jobs on a tiny model:
train on the Train screen, forget a class in the Models screen's confirmation dialog, audit it
on the Audits screen (the request becomes verified), export its signed certificate on the
Certificates screen and verify the PDF there."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

import engine.worker
from gui.context import AppContext
from gui.forget_dialog import ForgetDialog
from gui.main_window import MainWindow
from storage.models import ClassEntry, ErasureRequest
from tests import approvals

# A tiny ViT on 8x8 digits (tests/image/conftest.py TINY, fewer epochs): seconds to train.
TINY = {"patch_size": 4, "augment": 0,
        "overrides": {"embed_dim": 48, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}}
QUICK_AUDIT = {"samples": 60, "relearn_epochs": 2, "relearn_seeds": 1}


# The real device probe: it also sets the worker's torch threads for a small machine.
WORKER_PROBE = engine.worker.DEFAULT_PROBE


def _approved_request(ctx: AppContext) -> int:
    with ctx.workspace.sessions.begin() as session:
        request = approvals.create_request(session, model_name="tiny", classes=["3"],
                                      subject_key=approvals.key_of(ctx.workspace),
                                      subject="customer 10442", operator="alice",
                                      legal_basis="GDPR Art. 17(1)(b)")
        approvals.approve(session, request.id, "bob")
        return request.id


def _confirm_forget(request_id: int, seen: list[str]) -> None:
    """Answer the modal confirmation the way an operator does: choose the request, confirm."""
    dialog = QApplication.activeModalWidget()
    if not isinstance(dialog, ForgetDialog):
        QTimer.singleShot(20, lambda: _confirm_forget(request_id, seen))
        return
    dialog.choose_request(request_id)
    seen.append(dialog.text())
    dialog.forget_button.click()


# Each job takes seconds on an idle machine; the generous wait only matters on a loaded one
# (a run with two benchmarks beside it timed out at 90 s in training).
WAIT_MS = 240_000


@pytest.mark.timeout(900)
def test_train_forget_audit_and_certify_through_the_widgets(
        qtbot, engine_ctx: AppContext, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    window = MainWindow(engine_ctx)
    qtbot.addWidget(window)
    window.show()
    assert window.demo_banner.state == "offer"  # an empty workspace
    window.demo_banner.close_button.click()
    assert not window.demo_banner.isVisible()

    window.show_screen("Train")
    train = window.screen("Train")
    train.form.name_edit.setText("tiny")
    train.form.mode_box.setCurrentText("full")  # the flow forgets, audits, retrains
    train.form.epochs_spin.setValue(3)
    train.form.advanced_edit.setText(json.dumps(TINY))
    train.form.device_box.setCurrentText("cpu")
    train.train_button.click()
    qtbot.waitUntil(lambda: train._job is None, timeout=WAIT_MS)
    assert train.result_label.text().startswith("✔ tiny v1 registered"), \
        train.result_label.text()
    assert train.chart.points > 0 and "Epoch 3 of 3" in train.figures_label.text()

    request_id = _approved_request(engine_ctx)
    window.show_screen("Models")
    models = window.screen("Models")
    models.select_model("tiny")
    models.select_classes(["3"])
    seen: list[str] = []
    QTimer.singleShot(20, lambda: _confirm_forget(request_id, seen))
    models.forget_button.click()
    qtbot.waitUntil(lambda: models._job is None, timeout=WAIT_MS)
    assert "will be destroyed" in seen[0] and f"Request {request_id}:" in seen[0]
    with engine_ctx.workspace.sessions() as session:
        entry = session.query(ClassEntry).filter_by(display_name="3").one()
        assert entry.status == "forgotten"
        assert session.get(ErasureRequest, request_id).status == "executed"

    window.show_screen("Audits")
    audits = window.screen("Audits")
    assert audits.model_box.currentText() == "tiny" and audits.audit is None
    audits.samples_spin.setValue(QUICK_AUDIT["samples"])
    audits.epochs_spin.setValue(QUICK_AUDIT["relearn_epochs"])
    audits.seeds_spin.setValue(QUICK_AUDIT["relearn_seeds"])
    audits.run_button.click()
    qtbot.waitUntil(lambda: audits._job is None, timeout=WAIT_MS)
    assert audits.status_label.text() == "The audit is stored and shown below."
    figures = audits.summary.figures()
    assert figures["Forget accuracy (train)"][0] == "0.0%"
    assert figures["Relearn after 5 images"][1] != "not run"  # the reference was audited
    assert audits.accuracy_chart.series and audits.relearn_chart.series
    assert audits.membership.roc_chart.series
    with engine_ctx.workspace.sessions() as session:
        assert session.get(ErasureRequest, request_id).status == "verified"

    window.show_screen("Certificates")
    certificates = window.screen("Certificates")
    pdf = tmp_path / "certificate.pdf"
    monkeypatch.setenv("UNPROMPT_KEY_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(pdf), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(pdf), ""))
    certificates.request_box.setCurrentIndex(certificates.request_box.findData(request_id))
    certificates.export_button.click()
    qtbot.waitUntil(lambda: certificates._job is None, timeout=WAIT_MS)
    assert "Certificate" in certificates.export_status.text() and pdf.is_file(), \
        certificates.export_status.text()
    certificates.verify_button.click()
    assert ">VALID<" in certificates.verdict_label.text()
    with engine_ctx.workspace.sessions() as session:
        assert session.get(ErasureRequest, request_id).status == "certified"
