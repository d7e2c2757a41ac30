"""The audit log (seq, time, actor, action, payload) and its chain verification."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from gui.context import AppContext
from gui.formatting import compact_json, local_time, pretty_json
from gui.screen import Screen
from gui.table_model import TONES, Column, Record, RecordTableModel, record_table, sorted_proxy
from storage import auditlog
from storage.queries_gui import audit_log_rows

COLUMNS = [
    Column("Seq", lambda r: str(r["seq"]), sort=lambda r: r["seq"],
           align=Qt.AlignmentFlag.AlignRight),
    Column("Time", lambda r: local_time(r["timestamp"]), sort=lambda r: r["timestamp"],
           tooltip=lambda r: r["timestamp"]),
    Column("Actor", lambda r: r["actor"]),
    Column("Action", lambda r: r["action"]),
    Column("Payload", lambda r: compact_json(r["payload"]),
           tooltip=lambda r: pretty_json(r["payload"])),
]


class ActivityWidget(Screen):
    """Every state change, newest first; 'Verify chain' recomputes the hash chain."""

    title = "Activity"
    description = ("The audit log: every state change, append-only and hash-chained. "
                   "Verify the chain to detect entries that were edited, removed or reordered.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._bad_seq: int | None = None
        self.model = RecordTableModel(COLUMNS, tone=self._tone)
        self.proxy = sorted_proxy(self.model, self)
        self.table = record_table(self.proxy)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by actor, action or payload")
        self.filter_edit.setClearButtonEnabled(True)
        self.verify_button = QPushButton("Verify chain")
        self.refresh_button = QPushButton("Refresh")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setVisible(False)
        self._build_layout()
        self._connect()
        self.refresh()

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        row.addWidget(self.filter_edit, 1)
        row.addWidget(self.verify_button)
        row.addWidget(self.refresh_button)
        self.body.addLayout(row)
        self.body.addWidget(self.result_label)
        self.body.addWidget(self.table, 1)

    def _connect(self) -> None:
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.verify_button.clicked.connect(self._on_verify_button_clicked)
        self.refresh_button.clicked.connect(self.refresh)
        self.ctx.registryChanged.connect(self.refresh)

    def refresh(self) -> None:
        """Reload the newest entries (the chain result stays until the next verification)."""
        with self.ctx.workspace.sessions() as session:
            rows = audit_log_rows(session)
        self.model.set_records(rows)
        self.table.resizeColumnsToContents()

    def _tone(self, record: Record) -> str | None:
        return "danger" if record["seq"] == self._bad_seq else None

    def _on_verify_button_clicked(self) -> None:
        with self.ctx.workspace.sessions() as session:
            report = auditlog.verify(session)
        self._bad_seq = report.first_bad
        self.model.refresh_tones()
        if report.valid:
            self._show_result("ok", f"✔ The chain is valid: {report.entries} entries; "
                              f"head hash {report.head_hash[:16]}…")
        else:
            self._show_result("danger", f"✘ The chain is broken at entry {report.first_bad}: "
                              f"{report.reason}.")
            self._reveal(report.first_bad)

    def _show_result(self, tone: str, text: str) -> None:
        background, foreground = TONES[tone]
        self.result_label.setStyleSheet(f"background: {background}; color: {foreground}; "
                                        "padding: 6px 8px; border-radius: 3px;")
        self.result_label.setText(text)
        self.result_label.setVisible(True)

    def _reveal(self, seq: int | None) -> None:
        self.filter_edit.clear()
        row = self.model.row_where("seq", seq)
        if row >= 0:
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            self.table.selectRow(index.row())
            self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    @property
    def result_text(self) -> str:
        return "" if self.result_label.isHidden() else self.result_label.text()

