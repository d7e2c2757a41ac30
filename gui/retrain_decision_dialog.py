"""The operator's decision on a retrain held for accuracy (docs/design.md section 18).

A retrain that fell more than the margin below the live version is not promoted: it
waits here. The dialog shows its figures and records a signed *accept* (the retrain is
then run again and promotes the stored model) or *reject* (the live version stays),
with a reason, through ``storage.retrain.decide_held``: the very function behind
``retrain N --accept/--reject --reason TEXT``, so both leave the same log entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.errors import show_error
from storage.errors import UnpromptError
from storage.retrain_plan import held_text

Submit = Callable[[dict[str, Any], bool], None]


class RetrainDecisionDialog(QDialog):
    """Accept or reject one held retrain; ``submit(values, accept)`` records the decision.

    When ``submit`` raises ``UnpromptError`` (no reason, wrong passphrase, nothing held any
    more) the dialog shows the message, clears the passphrase and stays open."""

    def __init__(self, held: dict[str, Any], operator: str, submit: Submit,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Held retrain of {held['model']}")
        self._submit = submit
        self.accepted_retrain: bool | None = None
        self.figures = QLabel(_figures_html(held))
        self.figures.setWordWrap(True)
        self.operator_edit = QLineEdit(operator)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("required; recorded in the signed log entry")
        self.passphrase_edit = QLineEdit()
        self.passphrase_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase_edit.setPlaceholderText("the operator's own passphrase")
        self.accept_button = QPushButton("Accept and promote")
        self.reject_button = QPushButton("Reject")
        self._build_layout()
        self.reason_edit.setFocus()
        self.resize(520, self.sizeHint().height())

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Operator", self.operator_edit)
        form.addRow("Reason", self.reason_edit)
        form.addRow("Passphrase", self.passphrase_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(self.accept_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.reject_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.accept_button.clicked.connect(lambda: self._decide(True))
        self.reject_button.clicked.connect(lambda: self._decide(False))
        hint = QLabel("Accepting runs the retrain again: it promotes the stored retrained "
                      "model, purges every earlier version and makes the waiting requests "
                      "exact. Rejecting keeps the live version; the requests stay "
                      "suppressed and keep waiting. Either way the decision is signed with "
                      "the operator's passphrase and logged.")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.figures)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        return {"operator": self.operator_edit.text().strip(),
                "reason": self.reason_edit.text(),
                "passphrase": self.passphrase_edit.text() or None}

    def _decide(self, accept: bool) -> None:
        try:
            self._submit(self.values(), accept)
        except UnpromptError as exc:
            self.passphrase_edit.clear()
            verb = "accept" if accept else "reject"
            show_error(self, f"Cannot {verb} the held retrain", str(exc))
            return
        self.accepted_retrain = accept
        self.accept()


def _figures_html(held: dict[str, Any]) -> str:
    gap = held["retained_live"] - held["retained_retrain"]
    return (f"<b>{held_text(held)}.</b><br/>Live v{held['from_version']}: "
            f"{held['retained_live']:.1%} · retrained: {held['retained_retrain']:.1%} · "
            f"{gap:.1%} below, margin {held['margin']:.1%} (setting "
            "<code>retrain_margin</code>).")
