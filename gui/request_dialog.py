"""The dialog that records a new erasure request (docs/design.md section 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.errors import show_error
from storage.errors import UnpromptError

LEGAL_BASES = [
    "GDPR Art. 17(1)(a): no longer necessary",
    "GDPR Art. 17(1)(b): consent withdrawn",
    "GDPR Art. 17(1)(c): objection to processing",
    "GDPR Art. 17(1)(d): unlawfully processed",
    "GDPR Art. 17(1)(e): legal obligation",
    "CCPA 1798.105: right to delete",
]


class RequestDialog(QDialog):
    """Model, classes, forget rule or (a fine-tuned language model) person, subject
    reference, legal basis, and who records it.

    With four-eyes on, the operator proves their passphrase, so that the request's approver
    can be told apart from its requester. ``submit(values)`` records the request; when it
    raises ``UnpromptError`` the dialog shows the message, clears the passphrase and stays
    open so that the operator can correct the input.
    """

    def __init__(self, choices: list[dict[str, Any]], submit: Callable[[dict[str, Any]], None],
                 operator: str = "", four_eyes: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New erasure request")
        self._choices, self._submit = {c["name"]: c for c in choices}, submit
        self._four_eyes = four_eyes
        self.operator_edit = QLineEdit(operator)
        self.passphrase_edit = QLineEdit()
        self.passphrase_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase_edit.setPlaceholderText(
            "the operator's own passphrase" if four_eyes
            else "optional: without it the requester is recorded as unproven")
        self.model_box = QComboBox()
        for choice in choices:
            self.model_box.addItem(f"{choice['name']}  ({_kind(choice)})", choice["name"])
        self.classes_list = QListWidget()
        self.rule_box = QComboBox()
        self.person_box = QComboBox()  # a fine-tuned model's people (docs/design.md 14)
        self.person_box.setEditable(True)
        self.person_box.lineEdit().setPlaceholderText("the person whose records to erase")
        self.scope_stack = QStackedWidget()
        for widget in (self.classes_list, self.rule_box, self.person_box):
            self.scope_stack.addWidget(widget)
        self.subject_edit = QLineEdit()
        self.legal_box = QComboBox()
        self.legal_box.setEditable(True)
        self.legal_box.addItems(LEGAL_BASES)
        self.legal_box.setCurrentIndex(1)
        self._build_layout()
        self.model_box.currentIndexChanged.connect(self._on_model_box_changed)
        self._on_model_box_changed()
        self.resize(520, self.sizeHint().height())

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        self.scope_label = QLabel("Classes")
        form.addRow(self.scope_label, self.scope_stack)
        form.addRow("Data subject", self.subject_edit)
        form.addRow("Legal basis", self.legal_box)
        form.addRow("Recorded by", self.operator_edit)
        form.addRow("Passphrase", self.passphrase_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Record request")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        if not self._choices:
            hint = QLabel("No image model or language model is registered yet: train or load "
                          "one first (Models screen or the CLI).")
            hint.setWordWrap(True)
            layout.addWidget(hint)
            self.ok_button.setEnabled(False)
        layout.addLayout(form)
        layout.addWidget(_wrapped(FOUR_EYES_HINT if self._four_eyes else NO_FOUR_EYES_HINT))
        layout.addWidget(buttons)

    def _on_model_box_changed(self, _index: int = 0) -> None:
        choice = self._choices.get(self.model_box.currentData(), {})
        people = choice.get("people")
        rules = choice.get("kind") == "llm" and people is None
        self.scope_label.setText("Person" if people is not None
                                 else "Forget rule" if rules else "Classes")
        self.scope_stack.setCurrentWidget(self.person_box if people is not None else
                                          self.rule_box if rules else self.classes_list)
        self.subject_edit.setEnabled(people is None)  # the person is the subject
        self.subject_edit.setPlaceholderText(
            "customer number, e-mail, ... (stored only hashed)" if people is None
            else "the person named above (stored only hashed)")
        self.person_box.clear()
        self.person_box.addItems(people or [])
        self.person_box.setCurrentIndex(-1)
        self.classes_list.clear()
        self.rule_box.clear()
        for entry in choice.get("classes", []):
            self.classes_list.addItem(_class_item(entry))
        for rule in choice.get("rules", []):
            self.rule_box.addItem(rule["name"] + ("" if rule["status"] == "active"
                                                  else "  (disabled)"), rule["name"])
        self._fit_scope()

    def _fit_scope(self) -> None:
        """As tall as the classes (3 to 8 rows visible) or the rule box: no empty band."""
        if self.scope_stack.currentWidget() is not self.classes_list:
            height = self.scope_stack.currentWidget().sizeHint().height()
        else:
            rows = min(max(self.classes_list.count(), 3), 8)
            row = max(self.classes_list.sizeHintForRow(0), self.fontMetrics().height() + 4)
            height = rows * row + 2 * self.classes_list.frameWidth()
        self.scope_stack.setFixedHeight(height)

    def values(self) -> dict[str, Any]:
        """The request as keyword arguments of ``storage.requests.create_request``."""
        values: dict[str, Any] = {"model_name": self.model_box.currentData() or "",
                                  "subject": self.subject_edit.text(),
                                  "legal_basis": self.legal_box.currentText(),
                                  "operator": self.operator_edit.text().strip(),
                                  "passphrase": self.passphrase_edit.text() or None}
        if self.scope_stack.currentWidget() is self.person_box:
            values["subject"] = self.person_box.currentText()  # the scope is their records
        elif self.scope_stack.currentWidget() is self.rule_box:
            values["rule"] = self.rule_box.currentData()
        else:
            values["classes"] = [self.classes_list.item(i).data(Qt.ItemDataRole.UserRole)
                                 for i in range(self.classes_list.count())
                                 if self.classes_list.item(i).checkState()
                                 == Qt.CheckState.Checked]
        return values

    def check_class(self, name: str) -> None:
        """Tick the class called ``name`` (for keyboard users and tests)."""
        for i in range(self.classes_list.count()):
            item = self.classes_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked)

    def accept(self) -> None:
        try:
            self._submit(self.values())
        except UnpromptError as exc:
            self.passphrase_edit.clear()
            show_error(self, "Cannot record the request", str(exc))
            return
        super().accept()


FOUR_EYES_HINT = ("Four-eyes is on: the request is signed with the passphrase of the operator "
                  "who records it, and another operator must approve it.")
NO_FOUR_EYES_HINT = ("Four-eyes is off: without a passphrase the request is recorded under this "
                     "name, marked unproven in the audit log.")


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def _kind(choice: dict[str, Any]) -> str:
    if choice.get("people") is not None:
        return "fine-tuned language model"
    return "language model" if choice["kind"] == "llm" else "image classifier"


def _class_item(entry: dict[str, Any]) -> QListWidgetItem:
    forgotten = entry["status"] == "forgotten"
    item = QListWidgetItem(f"{entry['index']}: {entry['name']}"
                           + ("  (already forgotten)" if forgotten else ""))
    item.setData(Qt.ItemDataRole.UserRole, entry["name"])
    flags = Qt.ItemFlag.ItemIsUserCheckable
    item.setFlags(flags if forgotten else flags | Qt.ItemFlag.ItemIsEnabled)
    item.setCheckState(Qt.CheckState.Unchecked)
    return item


class DecisionDialog(QDialog):
    """Approve or reject a request: the operator proves who they are with their passphrase.

    ``submit(values)`` records the signed decision (``operator``, ``passphrase`` and, for a
    rejection, ``reason``); when it raises ``UnpromptError`` the dialog shows the message,
    clears the passphrase and stays open.
    """

    def __init__(self, title: str, action: str, operator: str,
                 submit: Callable[[dict[str, Any]], None], reason: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._submit, self._error_title = submit, f"Cannot {title[0].lower()}{title[1:]}"
        self.operator_edit = QLineEdit(operator)
        self.passphrase_edit = QLineEdit()
        self.passphrase_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase_edit.setPlaceholderText("the operator's own passphrase")
        self.reason_edit = QLineEdit() if reason else None
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(action)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._build_layout(buttons)
        (self.reason_edit or self.passphrase_edit).setFocus()
        self.resize(440, self.sizeHint().height())

    def _build_layout(self, buttons: QDialogButtonBox) -> None:
        form = QFormLayout()
        form.addRow("Operator", self.operator_edit)
        if self.reason_edit is not None:
            self.reason_edit.setPlaceholderText("recorded in the audit log")
            form.addRow("Reason", self.reason_edit)
        form.addRow("Passphrase", self.passphrase_edit)
        hint = QLabel("The decision is signed with the operator's own passphrase and recorded "
                      "in the audit log. Register operators with <b>Operators…</b> on the "
                      "Requests screen (or <code>unprompt&nbsp;operators&nbsp;add&nbsp;NAME"
                      "</code>).")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        values = {"operator": self.operator_edit.text().strip(),
                  "passphrase": self.passphrase_edit.text()}
        if self.reason_edit is not None:
            values["reason"] = self.reason_edit.text()
        return values

    def accept(self) -> None:
        try:
            self._submit(self.values())
        except UnpromptError as exc:
            self.passphrase_edit.clear()
            show_error(self, self._error_title, str(exc))
            return
        super().accept()
