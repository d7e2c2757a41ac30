"""'Try it' on the Models screen: one image through the live version, as bars (section 13).

The prediction runs in the engine worker (``serving.try_it:try_image_job``); this panel picks
the image (a random test image, a file, or one dropped on it) and shows the answer. When the
image's true class was forgotten, it says so: the class has no bar any more.
"""

from __future__ import annotations

import base64
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.context import AppContext

TRY_JOB = "serving.try_it:try_image_job"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"


class TryItPanel(QWidget):
    """Pick or drop an image; see the live version's probabilities per class."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model_name: str | None = None
        self.result: dict[str, Any] | None = None
        self._seed = 0
        self.setAcceptDrops(True)
        self.random_button = QPushButton("Random test image")
        self.open_button = QPushButton("Open image…")
        self.image_label = QLabel()
        self.image_label.setFixedSize(116, 116)
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setStyleSheet("border: 1px solid palette(mid);")
        self.note_label = QLabel("Pick a test image or drop one here.")
        self.note_label.setWordWrap(True)
        self.bars = QGridLayout()
        self.bars.setVerticalSpacing(1)
        self._build_layout()
        self.random_button.clicked.connect(self._on_random_button_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.set_model(None)

    def _build_layout(self) -> None:
        heading = QLabel("Try it")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        buttons = QHBoxLayout()
        buttons.addWidget(self.random_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.image_label)
        left.addStretch(1)
        row = QHBoxLayout()
        row.addLayout(left)
        row.addLayout(self.bars, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(heading)
        column.addLayout(buttons)
        column.addWidget(self.note_label)
        column.addLayout(row, 1)

    def set_model(self, name: str | None) -> None:
        """The image model to try (None: nothing to try)."""
        if name != self.model_name:
            self.model_name, self.result = name, None
            self._clear_bars()
            self.image_label.clear()
            self.note_label.setText("Pick a test image or drop one here." if name else
                                    "Select an image model to try it.")
        for button in (self.random_button, self.open_button):
            button.setEnabled(name is not None)

    def try_image(self, path: str | None = None) -> None:
        """Run the live version on a random test image, or on the file ``path``."""
        if self.model_name is None:
            return
        kwargs: dict[str, Any] = {"model_name": self.model_name}
        if path is None:
            self._seed += 1
            kwargs["seed"] = self._seed
        else:
            kwargs["path"] = path
        handle = self.ctx.submit_job(TRY_JOB, kwargs)
        self.note_label.setText("Asking the live version…")
        handle.succeeded.connect(self.show_result)
        handle.failed.connect(lambda message, _tb: self.note_label.setText(message))

    def show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        pixmap = QPixmap()
        pixmap.loadFromData(base64.b64decode(result["png"]))
        self.image_label.setPixmap(pixmap)
        self._clear_bars()
        probs = result["probabilities"]
        for row, (name, p) in enumerate(probs.items()):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{p:.1%}")
            bar.setMaximumHeight(14)
            self.bars.addWidget(QLabel(name), row, 0)
            self.bars.addWidget(bar, row, 1)
        self.note_label.setText(describe(result))

    def _clear_bars(self) -> None:
        while self.bars.count():
            item = self.bars.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def _on_random_button_clicked(self) -> None:
        self.try_image()

    def _on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Try an image", "", IMAGE_FILTER)
        if path:
            self.try_image(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self.model_name and event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.try_image(urls[0].toLocalFile())


def describe(result: dict[str, Any]) -> str:
    """One or two sentences about the answer, naming a forgotten true class."""
    version = f"{result['model']} v{result['version']}"
    said = f"{version} answers {result['top_class']}" if result["top_class"] else \
        f"{version} has no class left to answer with"
    true = result.get("true_class")
    if true is None:
        return f"{said}."
    if result["true_class_forgotten"]:
        return (f"{said}. This image shows class {true}, which was forgotten: the model can "
                "no longer predict it (it has no bar).")
    mark = "correct" if true == result["top_class"] else f"the image shows class {true}"
    return f"{said} ({mark})."
