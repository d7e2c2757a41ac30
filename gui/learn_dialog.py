"""'Learn class…': a new class from a folder of its images, as one new prompt
(engine.image_jobs.learn_job; the other classes' parameters stay untouched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


class LearnDialog(QDialog):
    """Class name, image folder and epochs; OK only when both are given."""

    def __init__(self, model: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Learn a class in {model['name']}")
        self._taken = {c["name"] for c in model["classes"]}
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("the new class's name")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder of images of the new class")
        self.browse_button = QPushButton("Browse…")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(10)
        self.problem = QLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Learn class")
        self._build_layout()
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        self.name_edit.textChanged.connect(self._on_input_changed)
        self.folder_edit.textChanged.connect(self._on_input_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._on_input_changed()

    def _build_layout(self) -> None:
        folder = QHBoxLayout()
        folder.addWidget(self.folder_edit, 1)
        folder.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Class name", self.name_edit)
        form.addRow("Image folder", folder)
        form.addRow("Epochs", self.epochs_spin)
        note = QLabel("Only the new class's prompt, head row and adapter train; every other "
                      "class keeps its exact bytes, so it stays individually forgettable.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

    def values(self) -> dict[str, Any]:
        """Keyword arguments of ``learn_job`` (besides workspace, model and operator)."""
        return {"class_name": self.name_edit.text().strip(),
                "data_dir": self.folder_edit.text().strip(),
                "epochs": self.epochs_spin.value()}

    def _problem(self) -> str:
        values = self.values()
        if not values["class_name"]:
            return "Name the new class."
        if values["class_name"] in self._taken:
            return f"The model already has a class named {values['class_name']!r}."
        if not values["data_dir"] or not Path(values["data_dir"]).is_dir():
            return "Choose an existing folder of images."
        return ""

    def _on_input_changed(self, _text: str = "") -> None:
        problem = self._problem()
        self.problem.setText(problem)
        self.ok_button.setEnabled(not problem)

    def _on_browse_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images of the new class",
                                                  self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
