"""The Train screen's form: dataset, classes, name, backbone, mode, epochs, device, seed and
advanced options, turned into the keyword arguments of the image jobs (docs/design.md 4, 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.datasets import DATASETS, FASHION_MNIST_DIR
from storage.erasure_kinds import EXACT, describe, erasure_kind

BACKBONES = ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224"]
MODES = {  # the first is the default: the mode whose every forget is exact
    "independent": "Each class is one Gaussian over a frozen backbone's features, derived "
                   "from its own images only: forgetting a class leaves the very model a "
                   "training without it gives. Needs a registered backbone that never saw "
                   "the classes you train here (Pretrain backbone); no epochs.",
    "isolated": "A backbone pretrained on non-erasable data stays frozen and every trainable "
                "parameter belongs to one class, but classes train together. Needs a "
                "registered backbone (Pretrain backbone).",
    "frozen": "Backbone frozen; prompts and head rows train together.",
    "lora": "LoRA adapters on attention (the paper's default); the adapters learn from every "
            "class.",
    "full": "Every weight trains; shared weights learn from every class.",
}
DEFAULT_MODE = next(iter(MODES))
NO_BACKBONE = "none (random initial weights)"


def mode_note(mode: str) -> str:
    """What the mode is, the erasure kind its forgets give, and what makes them exact."""
    kind = erasure_kind(mode)
    text = f"{MODES.get(mode, '')} Forgets are {kind}. {describe(kind)}"
    if kind != EXACT:
        text += (" Each request is made exact later by a retrain follow-up (Retrain…), "
                 "which costs about one training run of this model.")
    return text


def fashion_mnist_found() -> bool:
    return FASHION_MNIST_DIR.is_dir()


def parse_classes(text: str) -> list[str] | None:
    """'0 1 2', '0-4' or 'T-shirt/top, Trouser' as a list; None for all classes."""
    parts = text.split(",") if "," in text else text.split()
    parts = [p.strip() for p in parts if p.strip()]
    return parts or None


class TrainForm(QWidget):
    """Emits ``changed`` on every edit; ``problem()`` says what blocks a job, if anything."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._taken: set[str] = set()
        self.dataset_box = QComboBox()
        for name in DATASETS:
            found = name == "fashion-mnist" and fashion_mnist_found()
            self.dataset_box.addItem(f"{name}  (found)" if found else name, name)
        self.data_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText("all (or e.g. 0 1 2, 0-4, or names with commas)")
        self.name_edit = QLineEdit()
        self.backbone_box = QComboBox()
        self.backbone_box.setEditable(True)
        self.backbone_box.addItems(BACKBONES)
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.setCurrentText(DEFAULT_MODE)
        self.mode_note = QLabel()
        self.mode_note.setWordWrap(True)
        self.backbone_from_box = QComboBox()
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(0, 10_000)
        self.epochs_spin.setSpecialValueText("tuned default")
        self.device_box = QComboBox()
        self.device_box.addItems(["auto", "cpu", "cuda"])
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.advanced_edit = QLineEdit()
        self.advanced_edit.setPlaceholderText('JSON, e.g. {"patch_size": 4, "max_per_class": 200}')
        self.advanced_edit.setToolTip("More training options as a JSON object (any field of "
                                      "engine.training.TrainConfig); they override the rest.")
        self._build_layout()
        self._connect()
        self._on_dataset_box_currentIndexChanged()
        self._on_mode_box_currentTextChanged(self.mode_box.currentText())

    def _build_layout(self) -> None:
        folder = QHBoxLayout()
        folder.setContentsMargins(0, 0, 0, 0)
        folder.addWidget(self.data_edit, 1)
        folder.addWidget(self.browse_button)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for label, field in (("Dataset", self.dataset_box), ("Data folder", folder),
                             ("Classes", self.classes_edit), ("Name", self.name_edit),
                             ("Backbone", self.backbone_box), ("Mode", self.mode_box),
                             ("", self.mode_note), ("Backbone from", self.backbone_from_box),
                             ("Epochs", self.epochs_spin), ("Device", self.device_box),
                             ("Seed", self.seed_spin), ("Advanced", self.advanced_edit)):
            form.addRow(label, field)

    def _connect(self) -> None:
        self.dataset_box.currentIndexChanged.connect(self._on_dataset_box_currentIndexChanged)
        self.mode_box.currentTextChanged.connect(self._on_mode_box_currentTextChanged)
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        for edit in (self.data_edit, self.classes_edit, self.name_edit, self.advanced_edit):
            edit.textChanged.connect(self.changed)
        self.backbone_from_box.currentIndexChanged.connect(self.changed)

    def set_registry(self, taken: set[str], backbones: list[str]) -> None:
        """Names already used and the registered backbones (kind 'backbone')."""
        self._taken = set(taken)
        current = self.backbone_from_box.currentData()
        self.backbone_from_box.blockSignals(True)
        self.backbone_from_box.clear()
        self.backbone_from_box.addItem(NO_BACKBONE, None)
        for name in backbones:
            self.backbone_from_box.addItem(name, name)
        self.backbone_from_box.setCurrentIndex(max(0, self.backbone_from_box.findData(current)))
        self.backbone_from_box.blockSignals(False)
        if not self.name_edit.text() or self.name_edit.text() in self._taken:
            self.name_edit.setText(self.suggested_name())
        self.changed.emit()

    def suggested_name(self, stem: str | None = None) -> str:
        stem = stem or self.dataset()
        return next(f"{stem}-{n}" for n in range(1, 10_000) if f"{stem}-{n}" not in self._taken)

    def dataset(self) -> str:
        return self.dataset_box.currentData()

    def choose_backbone(self, name: str) -> None:
        self.backbone_from_box.setCurrentIndex(self.backbone_from_box.findData(name))

    # what the jobs get -------------------------------------------------------------------
    def common_values(self) -> dict[str, Any]:
        """Options both training jobs take (``advanced`` last: it overrides the rest)."""
        values: dict[str, Any] = {"name": self.name_edit.text().strip(),
                                  "dataset": self.dataset(),
                                  "backbone": self.backbone_box.currentText().strip(),
                                  "device": self.device_box.currentText(),
                                  "seed": self.seed_spin.value()}
        if self.data_edit.text().strip():
            values["data_dir"] = self.data_edit.text().strip()
        if parse_classes(self.classes_edit.text()):
            values["classes"] = parse_classes(self.classes_edit.text())
        if self.epochs_spin.value():
            values["epochs"] = self.epochs_spin.value()
        return {**values, **self.advanced()}

    def train_values(self) -> dict[str, Any]:
        """Keyword arguments of ``train_model_job`` (besides workspace and operator)."""
        values = {"mode": self.mode_box.currentText(), **self.common_values()}
        if self.backbone_from_box.currentData():
            values["backbone_from"] = self.backbone_from_box.currentData()
        return values

    def advanced(self) -> dict[str, Any]:
        """The advanced options; raises ValueError when they are not a JSON object."""
        text = self.advanced_edit.text().strip()
        if not text:
            return {}
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("the advanced options must be a JSON object")
        return value

    def problem(self, pretrain: bool = False) -> str:
        """Why a job cannot start yet ('' when it can)."""
        name = self.name_edit.text().strip()
        if not name:
            return "Name the model."
        if name in self._taken:
            return f"A model named {name!r} already exists; choose another name."
        if self._needs_folder() and not self.data_edit.text().strip():
            return f"The {self.dataset()} dataset needs its data folder."
        try:
            self.advanced()
        except ValueError as exc:
            return f"The advanced options are not a JSON object ({exc})."
        mode = self.mode_box.currentText()
        if not pretrain and mode in ("isolated", "independent") \
                and not self.backbone_from_box.currentData():
            return (f"{mode.capitalize()} mode needs a registered backbone: choose one under "
                    "'Backbone from' or pretrain one (Pretrain backbone).")
        return ""

    def _needs_folder(self) -> bool:
        return self.dataset() != "digits" and not (self.dataset() == "fashion-mnist"
                                                   and fashion_mnist_found())

    # slots -------------------------------------------------------------------------------
    def _on_dataset_box_currentIndexChanged(self, _index: int = 0) -> None:  # noqa: N802
        digits = self.dataset() == "digits"
        self.data_edit.setEnabled(not digits)
        self.browse_button.setEnabled(not digits)
        self.data_edit.setPlaceholderText(
            "not needed (bundled with scikit-learn)" if digits else
            f"auto-detected: {FASHION_MNIST_DIR}" if not self._needs_folder() else
            "required: the dataset's folder")
        if self.name_edit.text().startswith(tuple(f"{d}-" for d in DATASETS)):
            self.name_edit.setText(self.suggested_name())
        self.changed.emit()

    def _on_mode_box_currentTextChanged(self, mode: str) -> None:  # noqa: N802
        self.mode_note.setText(mode_note(mode))
        self.changed.emit()

    def _on_browse_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"The {self.dataset()} data folder",
                                                  self.data_edit.text() or str(Path.home()))
        if folder:
            self.data_edit.setText(folder)
