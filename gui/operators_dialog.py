"""The registered operators, and adding one (the desktop twin of `unprompt operators add`).

Four-eyes is on by default, so a new workspace cannot record a request until an operator
exists: the first operator is added without proof (bootstrap); every later one only by a
registered operator who gives their own passphrase (storage.operators).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.context import AppContext
from gui.errors import show_error
from gui.formatting import local_time
from gui.table_model import Column, Record, RecordTableModel, record_table, sorted_proxy
from storage import operators
from storage.errors import UnpromptError

COLUMNS = [
    Column("Name", lambda r: r["name"]),
    Column("Status", lambda r: r["status"].capitalize()),
    Column("Added by", lambda r: r["created_by"]),
    Column("Added at", lambda r: local_time(r["created_at"]), sort=lambda r: r["created_at"],
           tooltip=lambda r: r["created_at"]),
]
BOOTSTRAP_HINT = ("No operator is registered yet. The first operator is added without proof "
                  "(bootstrap); every later one must be added by a registered operator who "
                  "gives their own passphrase. With four-eyes on, requests can be recorded only "
                  "once an operator exists.")
PROOF_HINT = ("A new operator is added by a registered operator, who proves who they are with "
              "their own passphrase. The addition is recorded in the audit log.")
ERROR_TITLE = "Cannot add the operator"


def _tone(r: Record) -> str | None:
    return None if r["status"] == "active" else "muted"


def _password_edit(placeholder: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


class OperatorsDialog(QDialog):
    """The operator list and the 'Add operator' form; a refusal keeps the dialog open."""

    operatorAdded = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Operators")
        self.ctx = ctx
        self.model = RecordTableModel(COLUMNS, tone=_tone)
        self.table = record_table(sorted_proxy(self.model, self))
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        minimum = f"at least {operators.MIN_PASSPHRASE} characters"
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("the new operator's name")
        self.passphrase_edit = _password_edit(minimum)
        self.repeat_edit = _password_edit("the same passphrase again")
        self.actor_edit = QLineEdit(ctx.operator)
        self.actor_passphrase_edit = _password_edit("the acting operator's own passphrase")
        self.add_button = QPushButton("Add operator")
        self.add_button.setAutoDefault(False)
        self._build_layout()
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.reload()
        self.name_edit.setFocus()
        self.resize(560, self.sizeHint().height())

    def _build_layout(self) -> None:
        self.form = QFormLayout()
        self.form.addRow("New operator", self.name_edit)
        self.form.addRow("Passphrase", self.passphrase_edit)
        self.form.addRow("Repeat passphrase", self.repeat_edit)
        self.form.addRow("Added by", self.actor_edit)
        self.form.addRow("Their passphrase", self.actor_passphrase_edit)
        self.form.addRow("", self.add_button)
        group = QGroupBox("Add operator")
        group_layout = QVBoxLayout(group)
        group_layout.addWidget(self.hint)
        group_layout.addLayout(self.form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Registered operators"))
        layout.addWidget(self.table, 1)
        layout.addWidget(group)
        layout.addWidget(buttons)

    @property
    def bootstrap(self) -> bool:
        """Whether the next operator is the first (added without proof)."""
        return self.model.rowCount() == 0

    def reload(self) -> None:
        """Show the registered operators; the proof fields only when someone can give it."""
        with self.ctx.workspace.sessions() as session:
            rows = operators.list_operators(session)
        self.model.set_records(rows)
        self.table.resizeColumnsToContents()
        self.table.setMinimumHeight(self.table.fontMetrics().height() * 7)
        self.hint.setText(BOOTSTRAP_HINT if self.bootstrap else PROOF_HINT)
        for edit in (self.actor_edit, self.actor_passphrase_edit):
            self.form.setRowVisible(edit, not self.bootstrap)
        self.add_button.setText("Add the first operator" if self.bootstrap else "Add operator")

    def values(self) -> dict[str, Any]:
        """The form as keyword arguments of ``storage.operators.add_operator``."""
        bootstrap = self.bootstrap
        return {"name": self.name_edit.text().strip(), "passphrase": self.passphrase_edit.text(),
                "actor": self.ctx.operator if bootstrap else self.actor_edit.text().strip(),
                "actor_passphrase": None if bootstrap else self.actor_passphrase_edit.text()}

    def _on_add_button_clicked(self) -> None:
        try:
            name = self._add()
        except UnpromptError as exc:
            self._clear_passphrases()
            self.reload()  # someone may have added the first operator meanwhile
            show_error(self, ERROR_TITLE, str(exc))
            return
        self._clear_passphrases()
        self.name_edit.clear()
        self.reload()
        self.operatorAdded.emit(name)
        self.ctx.registryChanged.emit()

    def _add(self) -> str:
        """Register the operator in one unit of work; ``UnpromptError`` when refused."""
        if self.passphrase_edit.text() != self.repeat_edit.text():
            raise UnpromptError("the two new passphrases differ; type the same one twice")
        values = self.values()
        with self.ctx.workspace.sessions.begin() as session:
            return operators.add_operator(session, **values).name

    def _clear_passphrases(self) -> None:
        for edit in (self.passphrase_edit, self.repeat_edit, self.actor_passphrase_edit):
            edit.clear()
