"""The engine's queue (issue 22): what runs, what is paused for an interleaved job, what
waits and why, with Cancel for each. Opened from the status bar's Jobs button."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import EngineBridge

COLUMNS = ["Job", "Class", "State", "Progress or why it waits", ""]
STATES = {"running": "running", "starting": "starting", "queued": "waiting",
          "suspended": "paused (an interactive job runs)"}
LANES = {"interactive": "interactive", "long": "long"}


def job_detail(job: dict[str, Any]) -> str:
    """The last progress message of a job in flight, or why a queued job waits."""
    if job["state"] == "queued":
        return job["reason"]
    progress = job.get("progress") or {}
    fraction = progress.get("fraction")
    percent = f"{round(100 * fraction)} % · " if fraction is not None else ""
    return f"{percent}{progress.get('message') or '…'}"


def jobs_summary(jobs: list[dict[str, Any]]) -> str:
    """'Jobs: 2 running, 1 waiting' for the status bar's button."""
    waiting = sum(job["state"] == "queued" for job in jobs)
    running = len(jobs) - waiting
    if not jobs:
        return "Jobs: none"
    parts = [f"{running} running"] if running else []
    return "Jobs: " + ", ".join(parts + ([f"{waiting} waiting"] if waiting else []))


class JobsPanel(QDialog):
    """A non-modal window listing the bridge's jobs; follows the queue as it moves."""

    def __init__(self, engine: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self.setWindowTitle("Engine jobs")
        self.hint = QLabel("Interactive jobs (forget, evaluate, certify, rule status, ask) "
                           "start at once: a long job pauses at its next step and resumes "
                           "after them. Long jobs (train, learn, audit, scrub, rule build) "
                           "run one at a time.")
        self.hint.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("No job is running or waiting.")
        column = QVBoxLayout(self)
        for widget in (self.hint, self.table, self.empty):
            column.addWidget(widget)
        self.resize(760, 260)
        engine.queueChanged.connect(self.refresh)
        engine.progressed.connect(self._on_engine_progressed)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the rows when the set of jobs changed, else update their texts (the
        Cancel buttons stay, with their 'Cancelling…')."""
        jobs = self._engine.jobs()
        shown = [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)
                 for r in range(self.table.rowCount())]
        rebuild = shown != [job["id"] for job in jobs]
        if rebuild:
            self.table.setRowCount(0)
            self.table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            cells = [f"{job['kind']} (job {job['id']})", LANES.get(job["lane"], job["lane"]),
                     STATES.get(job["state"], job["state"]), job_detail(job)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, job["id"])
                item.setToolTip(text)
                self.table.setItem(row, col, item)
            if rebuild:
                self.table.setCellWidget(row, 4, self._cancel_button(job["id"]))
        self.table.setVisible(bool(jobs))
        self.empty.setVisible(not jobs)

    def row_of(self, job_id: int) -> int | None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == job_id:
                return row
        return None

    def cancel_button(self, job_id: int) -> QPushButton | None:
        row = self.row_of(job_id)
        return None if row is None else self.table.cellWidget(row, 4)

    def _cancel_button(self, job_id: int) -> QPushButton:
        button = QPushButton("Cancel")
        button.setToolTip(f"Cancel job {job_id} (a running job stops at its next step)")
        button.clicked.connect(lambda _checked=False, j=job_id: self._on_cancel(j, button))
        return button

    def _on_cancel(self, job_id: int, button: QPushButton) -> None:
        if self._engine.cancel(job_id):
            button.setEnabled(False)
            button.setText("Cancelling…")

    def _on_engine_progressed(self, job_id: int, _data: dict[str, Any]) -> None:
        row = self.row_of(job_id)
        if row is None:
            return
        job = next((j for j in self._engine.jobs() if j["id"] == job_id), None)
        if job is not None:
            self.table.item(row, 3).setText(job_detail(job))
