"""The Certificates screen: export the signed certificate of an executed request (a job in
the engine worker) and verify a certificate PDF (open it, or drop it on the screen)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import reporting_errors, show_error
from gui.screen import Screen
from storage.errors import UnpromptError

CERTIFY_JOB = "reports.certify_service:certify_job"
PASSPHRASE_ENV = "UNPROMPT_KEY_PASSPHRASE"
GOOD, BAD = "#1e6b3a", "#b3261e"


def ask_passphrase(parent: QWidget, purpose: str) -> str | None:
    """The signing-key passphrase: $UNPROMPT_KEY_PASSPHRASE, else a password prompt
    (None when the operator cancels)."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given:
        return given
    text, ok = QInputDialog.getText(parent, "Signing-key passphrase",
                                    f"Passphrase of the workspace signing key ({purpose}):",
                                    QLineEdit.EchoMode.Password)
    return text if ok and text else None


def pdf_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
    """Local ``.pdf`` files carried by a drag."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls()
            if u.isLocalFile() and u.toLocalFile().lower().endswith(".pdf")]


class CertificatesWidget(Screen):
    title = "Certificates"
    description = ("Export signed PDF erasure certificates for executed requests and verify "
                   "certificates you receive (open one, or drop a PDF here).")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._job: JobHandle | None = None
        self._pending: dict[str, Any] = {}
        self.setAcceptDrops(True)
        self.body.addWidget(self._export_box())
        self.body.addWidget(self._verify_box(), 1)
        self.refresh()

    def _export_box(self) -> QGroupBox:
        box = QGroupBox("Export a certificate")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.request_box = QComboBox()
        self.request_box.setMinimumContentsLength(40)
        self.export_button = QPushButton("Export certificate…")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        row.addWidget(QLabel("Executed request:"))
        row.addWidget(self.request_box, 1)
        row.addWidget(self.export_button)
        self.export_status = QLabel("")
        self.export_status.setWordWrap(True)
        self.export_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.issued_list = QListWidget()
        self.issued_list.setMaximumHeight(110)
        layout.addLayout(row)
        layout.addWidget(self.export_status)
        layout.addWidget(QLabel("Issued in this workspace:"))
        layout.addWidget(self.issued_list)
        return box

    def _verify_box(self) -> QGroupBox:
        box = QGroupBox("Verify a certificate")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.verify_button = QPushButton("Open PDF to verify…")
        self.verify_button.clicked.connect(self._on_verify_button_clicked)
        hint = QLabel("or drop a certificate PDF anywhere on this screen.")
        hint.setPalette(self._muted_palette(hint))
        row.addWidget(self.verify_button)
        row.addWidget(hint, 1)
        self.verdict_label = QLabel("No certificate checked yet.")
        font = self.verdict_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.verdict_label.setWordWrap(True)
        self.details_label = QLabel("")
        self.details_label.setWordWrap(True)
        self.reasons_list = QListWidget()
        self.reasons_list.setWordWrap(True)
        layout.addLayout(row)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.details_label)
        layout.addWidget(self.reasons_list, 1)
        return box

    def refresh(self) -> None:
        from storage.certificates import certifiable_requests, list_certificates

        with self.ctx.workspace.sessions() as session:
            ready, issued = certifiable_requests(session), list_certificates(session)
        current = self.request_box.currentData()
        self.request_box.clear()
        for r in ready:
            names = ("class " + ", ".join(c["name"] for c in r["scope"].get("classes", []))
                     if r["scope"].get("kind") == "classes" else f"rule {r['scope'].get('rule')}")
            self.request_box.addItem(f"#{r['id']}  {r['scope'].get('model')}: {names} "
                                     f"({r['status']})", r["id"])
        self.request_box.setCurrentIndex(max(0, self.request_box.findData(current)))
        self.issued_list.clear()
        for c in issued:
            self.issued_list.addItem(f"{c['certificate_id']}  request #{c['request_id']}  "
                                     f"{c['created_at'][:16].replace('T', ' ')}  "
                                     f"manifest {c['manifest_sha256'][:16]}…")
        self._update_actions()

    def _update_actions(self) -> None:
        self.export_button.setEnabled(self._job is None and self.request_box.count() > 0)

    def _on_export_button_clicked(self) -> None:
        from reports.certify_service import precheck

        request_id = self.request_box.currentData()
        if request_id is None:
            return
        with reporting_errors(self, "Cannot certify"):
            precheck(self.ctx.workspace, request_id)
            default = str(Path.home() / f"erasure-certificate-{request_id}.pdf")
            path, _ = QFileDialog.getSaveFileName(self, "Save the certificate", default,
                                                  "PDF (*.pdf)")
            if not path:
                return
            secret = ask_passphrase(self, "to sign the certificate")
            if secret is None:
                return
            self.start_certify(int(request_id), path, secret)

    def start_certify(self, request_id: int, path: str, secret: str) -> None:
        """Run certify in the engine worker. The job's first parameter is not named
        ``workspace``, so the passphrase never reaches the Job table."""
        kwargs = {"workspace_root": str(self.ctx.workspace.root), "request_id": request_id,
                  "out": path, "operator": self.ctx.operator, "passphrase": secret,
                  "overwrite": True}
        self._job = self.ctx.engine.submit(CERTIFY_JOB, kwargs, "certify")
        self._job.progressed.connect(self._on_job_progressed)
        self._job.waiting.connect(lambda reason: self.export_status.setText(
            f"Certifying request #{request_id}: waiting, {reason}…"))
        self._job.succeeded.connect(self._on_job_succeeded)
        self._job.failed.connect(self._on_job_failed)
        self._job.finished.connect(self._on_job_finished)
        self.export_status.setText(f"Certifying request #{request_id}…")
        self._update_actions()

    def _on_job_progressed(self, data: dict[str, Any]) -> None:
        self.export_status.setText(f"Certifying: {data.get('message', '')}…")

    def _on_job_succeeded(self, r: dict[str, Any]) -> None:
        audit = {True: "audit passed", False: "audit FAILED", None: "no audit verdict"}
        self.export_status.setText(
            f"<span style='color:{GOOD}'><b>Certificate {r['certificate_id']}</b></span> "
            f"written to {r['pdf']} ({r['erasure_kind']} erasure, "
            f"{audit[r.get('audit_passed')]}). Manifest SHA-256 {r['manifest_sha256']}.")

    def _on_job_failed(self, message: str, _traceback: str) -> None:
        self.export_status.setText(f"<span style='color:{BAD}'>Not certified:</span> "
                                   f"{message}")
        show_error(self, "Certificate not issued", message)

    def _on_job_finished(self, _status: str) -> None:
        self._job = None
        self.ctx.registryChanged.emit()
        self.refresh()

    def _on_verify_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Verify a certificate", str(Path.home()),
                                              "PDF (*.pdf)")
        if path:
            self.verify(path)

    def verify(self, path: str) -> dict[str, Any] | None:
        """Verify one PDF and show the verdict and its reasons."""
        from reports.certify_service import verify_file

        try:
            result = verify_file(self.ctx.workspace, path)
        except UnpromptError as exc:
            show_error(self, "Cannot verify", str(exc))
            return None
        self._show_verdict(result)
        return result

    def _show_verdict(self, r: dict[str, Any]) -> None:
        from reports.reasons import headline

        name = Path(r["file"]).name
        colour = GOOD if r["valid"] else BAD
        word = headline(r["valid"], r["reasons"])
        self.verdict_label.setText(f"<span style='color:{colour}'>{word}</span>: {name}")
        s = r.get("summary") or {}
        facts = [f"certificate {r.get('certificate_id') or 'unknown'}"]
        if s:
            facts.append(f"request #{s.get('request')}: {s.get('claim')}")
        if r.get("signer"):
            facts.append(f"signed by {r['signer']}")
        self.details_label.setText("; ".join(facts) + ".")
        self.reasons_list.clear()
        if r["valid"]:
            self.reasons_list.addItem("Signature intact and made by a trusted key; manifest "
                                      "hash and registry record match.")
        for code, text in zip(r["reasons"], r["explanations"], strict=True):
            self.reasons_list.addItem(f"{code}: {text}")
        for note in r.get("notes") or []:
            self.reasons_list.addItem(f"note: {note}")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if pdf_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = pdf_paths(event)
        if paths:
            event.acceptProposedAction()
            self.verify(paths[0])
