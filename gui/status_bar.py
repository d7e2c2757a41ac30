"""The window's status bar: device, worker state, every job in flight with the progress and
Cancel of the one running now, and the Jobs button that opens the queue (issue 22)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from gui.bridge import EngineBridge
from gui.jobs_widget import JobsPanel, jobs_summary

STATES = {
    "stopped": "Engine stopped", "starting": "Engine starting…", "idle": "Engine idle",
    "busy": "Engine busy", "restarting": "Engine restarting…",
    "failed": "Engine cannot start",
}


class EngineStatusBar(QStatusBar):
    """Follows the bridge's signals. The label names every job in flight (a long job paused
    for an interleaved one says so); progress and Cancel concern the job running now."""

    def __init__(self, engine: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._job: int | None = None
        self._kind = ""
        self._messages: dict[int, str] = {}
        self._kinds: dict[int, str] = {}
        self.panel: JobsPanel | None = None
        self.job_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.cancel_button = QPushButton("Cancel")
        self.jobs_button = QPushButton(jobs_summary([]))
        self.jobs_button.setFlat(True)
        self.jobs_button.setToolTip("What runs, what waits and why; cancel any job")
        self.state_label = QLabel()
        self.device_label = QLabel()
        for widget in (self.job_label, self.progress, self.cancel_button, self.jobs_button,
                       self.state_label, self.device_label):
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
        engine.queueChanged.connect(self._on_engine_queueChanged)
        engine.failed.connect(self._on_engine_failed)
        engine.deviceChanged.connect(self._on_engine_deviceChanged)
        engine.stateChanged.connect(self._on_engine_stateChanged)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.jobs_button.clicked.connect(self.show_jobs)

    @property
    def current_job(self) -> int | None:
        """The job running now (an interleaved job before the long job it paused)."""
        return self._job

    def show_jobs(self) -> JobsPanel:
        """Open (or raise) the jobs panel."""
        if self.panel is None:
            self.panel = JobsPanel(self._engine, self.window())
        self.panel.refresh()
        self.panel.show()
        self.panel.raise_()
        return self.panel

    def _show_job(self, visible: bool) -> None:
        for widget in (self.job_label, self.progress, self.cancel_button):
            widget.setVisible(visible)

    def _render(self) -> None:
        """Name every job in flight; progress and Cancel follow the one running now."""
        jobs = self._engine.jobs()
        flight = [j for j in jobs if j["state"] != "queued" and j["id"] in self._kinds]
        self.jobs_button.setText(jobs_summary(jobs))
        now = self._engine.running_jobs()
        job = now[-1] if now and now[-1] in self._kinds else None
        if job != self._job:
            self._job = job
            self._set_fraction(None)
            self.cancel_button.setEnabled(True)
            self.cancel_button.setText("Cancel")
        self._kind = self._kinds.get(job, "") if job is not None else ""
        parts = [self._describe(j) for j in flight]
        self.job_label.setText(" · ".join(parts))
        self.job_label.setToolTip("\n".join(parts))
        self._show_job(job is not None)

    def _describe(self, job: dict[str, Any]) -> str:
        kind = self._kinds[job["id"]]
        paused = " (paused)" if job["state"] == "suspended" else ""
        message = self._messages.get(job["id"])
        return f"{kind}{paused}: {message}" if message else f"{kind}{paused} (job {job['id']})"

    def _set_fraction(self, fraction: float | None) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)  # busy until the first fraction arrives
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))

    def _on_engine_jobStarted(self, job_id: int, kind: str) -> None:  # noqa: N802
        self._kinds[job_id] = kind
        self._render()

    def _on_engine_progressed(self, job_id: int, data: dict[str, Any]) -> None:
        if data.get("message"):
            self._messages[job_id] = data["message"]
        if job_id == self._job:
            self._set_fraction(data.get("fraction"))
        self._render()

    def _on_engine_jobFinished(self, job_id: int, status: str) -> None:  # noqa: N802
        kind = self._kinds.pop(job_id, None)
        self._messages.pop(job_id, None)
        if kind is not None:
            self.showMessage(f"{kind} (job {job_id}) {status}", 8000)
        self._render()

    def _on_engine_queueChanged(self) -> None:  # noqa: N802
        self._render()

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
