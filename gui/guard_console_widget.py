"""The guard's test console: one prompt, the unguarded and the guarded answer side by side,
with the classifier's flag and score."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.table_model import TONES


def verdict_text(answer: dict[str, Any], thresholds: dict[str, float]) -> tuple[str, str]:
    """('Flagged by rule …, score 0.93 above its threshold 0.73', tone)."""
    score = answer.get("score", 0.0)
    if answer.get("flagged"):
        rule = answer.get("rule") or "?"
        limit = thresholds.get(rule)
        above = f" above its threshold {limit:.3f}" if limit is not None else ""
        return (f"⚑ Flagged by rule {rule!r}: score {score:.3f}{above}. The guarded "
                "answer comes from corrupted prompt embeddings: the model can no longer use "
                "what it knows about the topic.", "warning")
    return (f"Not flagged (highest score {score:.3f}): the guarded answer is the model's own, "
            "untouched.", "ok")


class GuardConsole(QWidget):
    """Emits ``askRequested(prompt, max_new_tokens)``; ``show_answer`` shows the result."""

    askRequested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("Ask the language model something, e.g. Who is "
                                            "Harry Potter's best friend?")
        self.tokens_spin = QSpinBox()
        self.tokens_spin.setRange(1, 512)
        self.tokens_spin.setValue(48)
        self.tokens_spin.setPrefix("max tokens: ")
        self.ask_button = QPushButton("Ask")
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.unguarded_edit, self.guarded_edit = QPlainTextEdit(), QPlainTextEdit()
        row = QHBoxLayout()
        for widget in (self.prompt_edit, self.tokens_spin, self.ask_button):
            row.addWidget(widget)
        row.setStretch(0, 1)
        answers = QHBoxLayout()
        for title, edit in (("Without the guard", self.unguarded_edit),
                            ("With the guard", self.guarded_edit)):
            edit.setReadOnly(True)
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(edit)
            answers.addWidget(box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.verdict_label)
        layout.addLayout(answers, 1)
        self.prompt_edit.textChanged.connect(self._update_actions)
        self.prompt_edit.returnPressed.connect(self._on_ask_button_clicked)
        self.ask_button.clicked.connect(self._on_ask_button_clicked)
        self.set_busy(False)
        self.show_answer(None)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_actions()

    def show_answer(self, answer: dict[str, Any] | None,
                    thresholds: dict[str, float] | None = None) -> None:
        """One answer of ``guard ask`` (with ``unguarded_answer``); None clears."""
        if not answer:
            self._set_verdict("", "muted")
            self.unguarded_edit.clear()
            self.guarded_edit.clear()
            return
        text, tone = verdict_text(answer, thresholds or {})
        timing = answer.get("guard_ms")
        if timing is not None:
            text += f" (classifier {timing:.0f} ms)"
        self._set_verdict(text, tone)
        self.unguarded_edit.setPlainText(answer.get("unguarded_answer") or "")
        self.guarded_edit.setPlainText(answer.get("answer") or "")

    def show_message(self, text: str, tone: str = "muted") -> None:
        self._set_verdict(text, tone)

    def _set_verdict(self, text: str, tone: str) -> None:
        background, foreground = TONES[tone]
        self.verdict_label.setText(text)
        self.verdict_label.setVisible(bool(text))
        self.verdict_label.setStyleSheet(f"background: {background or 'transparent'}; "
                                         f"color: {foreground}; padding: 6px 8px; "
                                         "border-radius: 3px;")

    def _update_actions(self) -> None:
        self.ask_button.setEnabled(not self._busy and bool(self.prompt_edit.text().strip()))

    def _on_ask_button_clicked(self) -> None:
        if self.ask_button.isEnabled():
            self.askRequested.emit(self.prompt_edit.text().strip(), self.tokens_spin.value())
