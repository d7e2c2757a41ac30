"""The confirmation before classes are forgotten (docs/design.md section 4): which request it
executes, which classes go, and that the old weights are destroyed for good."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gui.formatting import local_date
from gui.table_model import TONES
from storage.erasure_kinds import describe, needs_residual

NO_REQUEST = "no request: this erasure cannot be certified"


def _boxed(text: str, tone: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    background, foreground = TONES[tone]
    label.setStyleSheet(f"background: {background}; color: {foreground}; "
                        "padding: 8px 10px; border-radius: 3px;")
    return label


class ForgetDialog(QDialog):
    """Names the request (or plainly none), lists the classes, warns; Cancel is the default.

    ``requests`` are the model's approved class requests (``approved_class_requests``);
    only those whose scope is exactly ``classes`` can be chosen.
    """

    def __init__(self, model: dict[str, Any], classes: list[str],
                 requests: list[dict[str, Any]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Forget classes of {model['name']}")
        self._classes = classes
        matching = [r for r in requests if sorted(r["classes"]) == sorted(classes)]
        others = [r for r in requests if r not in matching]
        self.request_box = QComboBox()
        for request in matching:
            self.request_box.addItem(_request_text(request), request["id"])
        self.request_box.addItem(NO_REQUEST.capitalize(), None)
        self.no_request_note = _boxed("No request: this erasure cannot be certified. Record "
                                      "and approve an erasure request first (Requests screen) "
                                      "if a certificate will be needed.", "warning")
        self.warning = _boxed(_destruction_text(model, classes), "danger")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.forget_button = self.buttons.addButton(
            "Forget and destroy old weights", QDialogButtonBox.ButtonRole.DestructiveRole)
        self._build_layout(model, others)
        self.request_box.currentIndexChanged.connect(self._on_request_box_currentIndexChanged)
        self._on_request_box_currentIndexChanged()

    def _build_layout(self, model: dict[str, Any], others: list[dict[str, Any]]) -> None:
        layout = QVBoxLayout(self)
        count = len(self._classes)
        heading = QLabel(f"Forget {count} class{'es' if count > 1 else ''} of "
                         f"<b>{model['name']}</b> (live version v{model['live_version']}):")
        layout.addWidget(heading)
        listing = QLabel("".join(f"• {name}<br>" for name in self._classes))
        listing.setObjectName("forgetClasses")
        listing.setContentsMargins(16, 0, 0, 0)
        layout.addWidget(listing)
        form = QFormLayout()
        form.addRow("Erasure request", self.request_box)
        layout.addLayout(form)
        if others:
            hint = QLabel(_others_text(others))
            hint.setWordWrap(True)
            layout.addWidget(hint)
        layout.addWidget(self.no_request_note)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self.buttons.rejected.connect(self.reject)
        self.forget_button.clicked.connect(self.accept)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setDefault(True)
        self.setMinimumWidth(560)

    def request_id(self) -> int | None:
        """The chosen request's id, or None to forget without one."""
        return self.request_box.currentData()

    def choose_request(self, request_id: int | None) -> None:
        self.request_box.setCurrentIndex(self.request_box.findData(request_id))

    def text(self) -> str:
        """Everything the dialog says, as plain text (for tests and screen readers)."""
        labels = [w.text() for w in self.findChildren(QLabel) if not w.isHidden()]
        return "\n".join([*labels, self.request_box.currentText()])

    def _on_request_box_currentIndexChanged(self, _index: int = 0) -> None:  # noqa: N802
        self.no_request_note.setVisible(self.request_id() is None)
        self.adjustSize()


def _request_text(request: dict[str, Any]) -> str:
    return (f"Request {request['id']}: due {local_date(request['due_at'])}, "
            f"approved by {request['approved_by']} ({request['legal_basis']})")


def _others_text(others: list[dict[str, Any]]) -> str:
    parts = [f"request {r['id']} covers {', '.join(r['classes'])}" for r in others]
    return ("Other approved requests for this model cover other classes ("
            + "; ".join(parts) + "): select exactly their classes to execute them.")


def _destruction_text(model: dict[str, Any], classes: list[str]) -> str:
    text = ("The old weights will be destroyed: every stored artifact that holds the prompts "
            "and head rows of these classes is overwritten and deleted, and the earlier "
            "versions that contain them can no longer be loaded. This cannot be undone.")
    kind = model.get("erasure_kind")
    if needs_residual(kind or ""):
        text += (f" {model['name']} was trained in {model['mode']} mode, so this erasure is "
                 f"{kind}: {describe(kind)}")
    return text
