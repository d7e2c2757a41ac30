"""The common frame of every screen: a title, one line about it, then its body."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from gui.context import AppContext


class Screen(QWidget):
    """Base of the screens in the main window's stack; ``refresh`` reloads from the registry."""

    title = ""
    description = ""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName(type(self).__name__)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 10)
        layout.setSpacing(8)
        heading = QLabel(self.title)
        heading.setObjectName("screenTitle")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.45)
        font.setBold(True)
        heading.setFont(font)
        blurb = QLabel(self.description)
        blurb.setObjectName("screenDescription")
        blurb.setWordWrap(True)
        blurb.setPalette(self._muted_palette(blurb))
        layout.addWidget(heading)
        layout.addWidget(blurb)
        self.body = QVBoxLayout()
        self.body.setSpacing(8)
        layout.addLayout(self.body, 1)

    @staticmethod
    def _muted_palette(label: QLabel) -> QPalette:
        palette = label.palette()
        palette.setColor(QPalette.ColorRole.WindowText,
                         palette.color(QPalette.ColorRole.PlaceholderText))
        return palette

    def refresh(self) -> None:
        """Reload what the screen shows (called when it becomes visible)."""


class PlaceholderScreen(Screen):
    """A screen whose content arrives with a later issue: the title and what it will hold."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        note = QLabel("This screen is not available in this version yet.")
        note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        note.setPalette(self._muted_palette(note))
        self.body.addWidget(note, 1)


def refill(box: QComboBox, texts: list[str]) -> None:
    """Replace a combo box's items, keeping the current text when it is still there, without
    emitting change signals (the caller redraws once)."""
    current = box.currentText()
    box.blockSignals(True)
    box.clear()
    box.addItems(texts)
    box.setCurrentIndex(max(0, box.findText(current)))
    box.blockSignals(False)
