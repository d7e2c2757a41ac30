"""The window's status bar: device, worker state, the current job, its progress, Cancel."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from gui.bridge import EngineBridge

STATES = {
    "stopped": "Engine stopped", "starting": "Engine starting…", "idle": "Engine idle",
    "busy": "Engine busy", "restarting": "Engine restarting…",
    "failed": "Engine cannot start",
}


class EngineStatusBar(QStatusBar):
    """Follows the bridge's signals; Cancel cancels the running job."""

    def __init__(self, engine: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._job: int | None = None
        self._kind = ""
        self.job_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.cancel_button = QPushButton("Cancel")
        self.state_label = QLabel()
        self.device_label = QLabel()
        for widget in (self.job_label, self.progress, self.cancel_button, self.state_label,
                       self.device_label):
            widget.setContentsMargins(6, 0, 6, 0)
            self.addPermanentWidget(widget)
        self._show_job(False)
        self._on_engine_stateChanged(engine.state)
        self._on_engine_deviceChanged(engine.device or "…")
        self._connect()

    def _connect(self) -> None:
        engine = self._engine
        engine.jobStarted.connect(self._on_engine_jobStarted)
        engine.progressed.connect(self._on_engine_progressed)
        engine.jobFinished.connect(self._on_engine_jobFinished)
        engine.failed.connect(self._on_engine_failed)
        engine.deviceChanged.connect(self._on_engine_deviceChanged)
        engine.stateChanged.connect(self._on_engine_stateChanged)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)

    @property
    def current_job(self) -> int | None:
        return self._job

    def _show_job(self, visible: bool) -> None:
        for widget in (self.job_label, self.progress, self.cancel_button):
            widget.setVisible(visible)

    def _on_engine_jobStarted(self, job_id: int, kind: str) -> None:  # noqa: N802
        self._job, self._kind = job_id, kind
        self.job_label.setText(f"{kind} (job {job_id})")
        self.progress.setRange(0, 0)  # busy until the first fraction arrives
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self._show_job(True)

    def _on_engine_progressed(self, job_id: int, data: dict[str, Any]) -> None:
        if job_id != self._job:
            return
        fraction = data.get("fraction")
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        if data.get("message"):
            self.job_label.setText(f"{self._kind}: {data['message']}")
            self.job_label.setToolTip(data["message"])

    def _on_engine_jobFinished(self, job_id: int, status: str) -> None:  # noqa: N802
        if job_id == self._job:
            self._job = None
            self._show_job(False)
            self.showMessage(f"{self._kind} (job {job_id}) {status}", 8000)

    def _on_engine_failed(self, job_id: int, message: str) -> None:
        self.showMessage(f"Job {job_id} failed: {message}", 15000)

    def _on_engine_deviceChanged(self, device: str) -> None:  # noqa: N802
        self.device_label.setText(f"Device: {device}")

    def _on_engine_stateChanged(self, state: str) -> None:  # noqa: N802
        self.state_label.setText(STATES.get(state, state))

    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None and self._engine.cancel(self._job):
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
