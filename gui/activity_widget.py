"""The audit log (seq, time, actor, action, payload), its verification (the chain, and every
head anchored by a certificate, report or signed checkpoint) and signing a checkpoint."""

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

from gui.certificates_widget import ask_passphrase
from gui.context import AppContext
from gui.errors import show_error
from gui.formatting import compact_json, local_time, pretty_json
from gui.screen import Screen
from gui.table_model import TONES, Column, Record, RecordTableModel, record_table, sorted_proxy
from storage.errors import UnpromptError
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
    """Every state change, newest first; 'Verify chain' recomputes the hash chain and checks
    the anchored heads; 'Sign checkpoint' anchors the current head."""

    title = "Activity"
    description = ("The audit log: every state change, append-only and hash-chained, its head "
                   "signed at every certificate and report. Verify it to detect entries that "
                   "were edited, removed, reordered or cut off the end.")

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
        self.checkpoint_button = QPushButton("Sign checkpoint")
        self.checkpoint_button.setToolTip("Sign the log's current head with the workspace key "
                                          "(kept under checkpoints/)")
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
        row.addWidget(self.checkpoint_button)
        row.addWidget(self.refresh_button)
        self.body.addLayout(row)
        self.body.addWidget(self.result_label)
        self.body.addWidget(self.table, 1)

    def _connect(self) -> None:
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.verify_button.clicked.connect(self._on_verify_button_clicked)
        self.checkpoint_button.clicked.connect(self._on_checkpoint_button_clicked)
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
        from reports.log_check import verify_log

        result = verify_log(self.ctx.workspace)
        self._bad_seq = result["first_bad"]
        self.model.refresh_tones()
        if result["valid"]:
            self._show_result("ok", f"✔ The chain is valid: {result['entries']} entries; "
                              f"head hash {result['head_hash'][:16]}…; {_anchors(result)}")
            return
        lines = [f"- {p}" for p in result["problems"]]
        if result["first_bad"] is not None:
            lines.insert(0, f"✘ The chain is broken at entry {result['first_bad']}: "
                            f"{result['reason']}.")
            self._reveal(result["first_bad"])
        else:
            lines.insert(0, f"✘ The chain holds ({result['entries']} entries) but heads "
                            "anchored outside the log are gone:")
        self._show_result("danger", "\n".join(lines))

    def _on_checkpoint_button_clicked(self) -> None:
        from reports.checkpoints import checkpoint
        from reports.key_admin import signing_identity

        secret = ask_passphrase(self, "to sign a checkpoint of the audit log")
        if secret is None:
            return
        try:
            identity = signing_identity(self.ctx.workspace, secret.encode("utf-8"),
                                        self.ctx.operator)
            made = checkpoint(self.ctx.workspace, identity, self.ctx.operator,
                              {"kind": "on-demand"})
        except UnpromptError as exc:
            show_error(self, "Checkpoint not signed", str(exc))
            return
        self.ctx.registryChanged.emit()
        self._show_result("ok", f"✔ Signed checkpoint {made['file']}: entry "
                          f"{made['head_seq']}, head {made['head_hash'][:16]}…, "
                          f"{made['signed_at']}.")

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



def _anchors(result: dict) -> str:
    """How many anchored heads and checkpoints were found in the chain, and the latest."""
    latest = result["checkpoints"]["latest"]
    found = (f"{_count(result['anchors']['checked'], 'certificate anchor')} and "
             f"{_count(result['checkpoints']['checked'], 'signed checkpoint')} in the chain")
    if latest is None:
        return found + "; no signed checkpoint yet (one comes with every certificate and report)."
    return (f"{found}; latest checkpoint: entry {latest['head_seq']}, signed "
            f"{local_time(latest['signed_at'])}.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
