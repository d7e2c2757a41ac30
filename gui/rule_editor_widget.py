"""A forget rule's editor: its example prompts, the threshold with the true- and false-positive
rates it gives (the calibration stored on the rule), and the corruption strength."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from reports.guard_text import fit_prompts, person_corruption, prompt_count, weaker_sentence
from storage.rules import PERSON_FAMILIES

MIN_FORGET = 5  # engine.guard.classifier.MIN_FORGET_EXAMPLES (the engine loads torch)


def prompts(examples: list[Any]) -> list[str]:
    """The prompt texts of stored examples (dicts or plain strings)."""
    return [e.get("prompt", "") if isinstance(e, dict) else str(e) for e in examples]


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def threshold_text(calibration: dict[str, Any], threshold: float) -> str:
    """The threshold and the rates it gave on prompts the classifier never trained on."""
    if "tpr" not in calibration:
        return f"Threshold {threshold:.3f} (no calibration stored: train the rule)."
    held_out = calibration.get("n_fit_positive") is not None
    where = ("measured on a calibration split the classifier never trained on" if held_out
             else "measured out-of-fold (a rule trained before held-out calibration)")
    sources = calibration.get("sources") or {}
    fit = (f" The classifier was fit on {fit_prompts(calibration)}."
           f"{weaker_sentence(calibration)}" if held_out else "")
    positive = prompt_count(calibration.get("n_positive"), sources.get("positive"), "forget")
    negative = prompt_count(calibration.get("n_negative"), sources.get("negative"), "other")
    return (f"Threshold {threshold:.3f}: flags {calibration['tpr']:.1%} of the forget prompts "
            f"(true-positive rate) and {calibration['fpr']:.1%} of other prompts "
            f"(false-positive rate), {where}: {positive} and {negative}; "
            f"calibrated for a {calibration.get('target_fpr', 0):.1%} target false-positive "
            f"rate. A prompt is flagged when its score is strictly above the threshold.{fit}")


def curve_rates(curve: dict[str, list[float]], threshold: float) -> tuple[float, float]:
    """(TPR, FPR) at ``threshold`` from a stored calibration curve (ascending thresholds)."""
    points = list(zip(curve["threshold"], curve["tpr"], curve["fpr"], strict=True))
    below = [p for p in points if p[0] <= threshold]
    _, tpr, fpr = below[-1] if below else points[0]
    return tpr, fpr


class RuleEditor(QWidget):
    """Shows a stored rule, or takes a new one; ``trainRequested`` carries the job options."""

    trainRequested = Signal(dict)  # a new rule: name, description, forget, retain, target_fpr
    retrainRequested = Signal(dict)  # the shown rule: rule, target_fpr

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rule: dict[str, Any] | None = None
        self.name_edit, self.description_edit = QLineEdit(), QLineEdit()
        self.forget_edit, self.retain_edit = QPlainTextEdit(), QPlainTextEdit()
        self.forget_edit.setPlaceholderText(
            f"Prompts about the topic to forget, one a line (at least {MIN_FORGET}); "
            "optionally prompt<TAB>answer<TAB>key1;key2, so that training measures what the "
            "model knows and sets the corruption strength.")
        self.retain_edit.setPlaceholderText("Neighbouring prompts that must stay answered, one "
                                            "a line (optional).")
        self.counts_label, self.threshold_label = QLabel(), QLabel()
        self.strength_label, self.problem_label = QLabel(), QLabel()
        self.evaluation_label = QLabel()
        for label in (self.threshold_label, self.strength_label, self.problem_label,
                      self.evaluation_label):
            label.setWordWrap(True)
        self.target_spin = QDoubleSpinBox()
        self.target_spin.setRange(0.1, 20.0)
        self.target_spin.setSingleStep(0.5)
        self.target_spin.setValue(1.0)
        self.target_spin.setSuffix(" %")
        self.target_spin.setToolTip("The share of everyday prompts the classifier may flag "
                                    "by mistake; the threshold is calibrated for it.")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider_label = QLabel()
        self.train_button = QPushButton("Train rule")
        self._build_layout()
        for edit in (self.name_edit, self.description_edit):
            edit.textChanged.connect(self.update_actions)
        self.forget_edit.textChanged.connect(self.update_actions)
        self.slider.valueChanged.connect(self._on_slider_valueChanged)
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.new_rule()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Description", self.description_edit)
        examples = QHBoxLayout()
        for title, edit in (("Forget", self.forget_edit), ("Retain", self.retain_edit)):
            box = QGroupBox(f"{title} examples")
            QVBoxLayout(box).addWidget(edit)
            examples.addWidget(box)
        threshold = QGroupBox("Threshold")
        column = QVBoxLayout(threshold)
        column.addWidget(self.threshold_label)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.slider_label)
        column.addLayout(slider_row)
        target = QHBoxLayout()
        target.addWidget(QLabel("Target false-positive rate"))
        target.addWidget(self.target_spin)
        target.addStretch(1)
        target.addWidget(self.train_button)
        column.addLayout(target)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.counts_label)
        layout.addLayout(examples, 1)
        layout.addWidget(threshold)
        layout.addWidget(self.strength_label)
        layout.addWidget(self.evaluation_label)
        layout.addWidget(self.problem_label)

    @property
    def rule(self) -> dict[str, Any] | None:
        """The stored rule shown (None while a new rule is being written)."""
        return self._rule

    # what it shows -----------------------------------------------------------------------
    def new_rule(self) -> None:
        """Empty, editable fields for a new rule."""
        self._rule = None
        for edit in (self.name_edit, self.description_edit, self.forget_edit,
                     self.retain_edit):
            edit.clear()
            edit.setReadOnly(False)
        self.threshold_label.setText("The threshold is calibrated when the rule trains.")
        self.strength_label.setText("")
        self.evaluation_label.setText("")
        self.counts_label.setText("")
        self.train_button.setText("Train rule")
        self._show_slider(None)
        self.update_actions()

    def show_rule(self, rule: dict[str, Any]) -> None:
        """A stored rule, read-only; its figures; Retrain recalibrates it."""
        self._rule = rule
        examples = rule.get("examples") or {}
        self.name_edit.setText(rule["name"])
        self.description_edit.setText(rule.get("description") or "")
        self.description_edit.setCursorPosition(0)
        self.description_edit.setToolTip(rule.get("description") or "")
        self.forget_edit.setPlainText("\n".join(prompts(examples.get("forget") or [])))
        self.retain_edit.setPlainText("\n".join(prompts(examples.get("retain") or [])))
        for edit in (self.name_edit, self.description_edit, self.forget_edit,
                     self.retain_edit):
            edit.setReadOnly(True)
        counts = {p: len(examples.get(p) or []) for p in ("forget", "retain", "general")}
        self.counts_label.setText(f"Version {rule.get('version', 1)} · {counts['forget']} "
                                  f"forget, {counts['retain']} retain and {counts['general']} "
                                  "general examples (read-only: a new list is a new rule).")
        calibration = rule.get("calibration") or {}
        self.threshold_label.setText(threshold_text(calibration, rule["threshold"]))
        if calibration.get("target_fpr") is not None:
            self.target_spin.setValue(100 * calibration["target_fpr"])
        self.strength_label.setText(_strength_text(rule))
        self.evaluation_label.setText(evaluation_text(rule.get("evaluation")))
        self.train_button.setText("Retrain rule")
        self._show_slider(calibration.get("curve"), rule["threshold"])
        self.update_actions()

    def _show_slider(self, curve: dict[str, Any] | None, threshold: float = 0.5) -> None:
        """A threshold slider when the rule stores its calibration curve."""
        self._curve = curve
        for widget in (self.slider, self.slider_label):
            widget.setVisible(bool(curve))
        if curve:
            self.slider.setValue(round(threshold * 1000))
            self._on_slider_valueChanged(self.slider.value())

    def _on_slider_valueChanged(self, value: int) -> None:  # noqa: N802
        if self._curve:
            tpr, fpr = curve_rates(self._curve, value / 1000)
            self.slider_label.setText(f"at {value / 1000:.3f}: TPR {tpr:.1%} · FPR {fpr:.1%}")

    # actions -----------------------------------------------------------------------------
    def problem(self) -> str:
        if self._rule is not None:
            return ""
        if not self.name_edit.text().strip():
            return "Name the rule."
        if len(lines(self.forget_edit.toPlainText())) < MIN_FORGET:
            return f"Give at least {MIN_FORGET} forget examples, one a line."
        return ""

    def update_actions(self) -> None:
        problem = self.problem()
        self.train_button.setEnabled(not problem and self.isEnabled())
        self.problem_label.setText(problem)

    def values(self) -> dict[str, Any]:
        """The options of the job the button asks for."""
        target = round(self.target_spin.value() / 100, 6)
        if self._rule is not None:
            return {"rule": self._rule["name"], "target_fpr": target}
        return {"name": self.name_edit.text().strip(),
                "description": self.description_edit.text().strip(),
                "forget": lines(self.forget_edit.toPlainText()),
                "retain": lines(self.retain_edit.toPlainText()), "target_fpr": target}

    def _on_train_button_clicked(self) -> None:
        signal = self.retrainRequested if self._rule is not None else self.trainRequested
        signal.emit(self.values())


def _strength_text(rule: dict[str, Any]) -> str:
    layers = (rule.get("calibration") or {}).get("layers")
    if rule.get("corruption") in PERSON_FAMILIES and layers:
        bias = (rule.get("corruption_params") or {}).get("value_bias")
        text = person_corruption(rule["corruption"], *layers[:2], bias)
        return f"{text[0].upper()}{text[1:]} (no strength to set)."
    search = (rule.get("calibration") or {}).get("sigma_search") or {}
    text = (f"Corruption {rule.get('corruption', '')} of the prompt's embeddings, strength "
            f"σ = {rule.get('sigma', 0.0):.4f}")
    if rule.get("trace"):
        text += f", chosen in {len(rule['trace'])} evaluations"
    if search.get("known") is not None:
        text += (f"; the unguarded model knew {search['known']} of "
                 f"{search.get('evaluated', '?')} forget prompts with a reference answer")
    return text + "."


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "—"


def evaluation_text(evaluation: dict[str, Any] | None) -> str:
    """The last `guard eval` of the rule in plain words ('' when never evaluated)."""
    if not evaluation:
        return "Not evaluated yet: Evaluate measures knowledge, side effects and rates."
    m = evaluation["metrics"]
    knowledge, side = m.get("knowledge") or {}, m.get("side_effects") or {}
    classifier = m.get("classifier") or {}
    latency = (classifier.get("latency_ms") or {}).get("p50")
    held = m.get("basis") == "held-out"
    text = (f"Last evaluation (audit #{evaluation['id']}, rule version "
            f"{evaluation.get('rule_version')}): the model knew {knowledge.get('known', '?')} of "
            f"{knowledge.get('evaluated', '?')} "
            f"{'held-out' if held else 'training and held-out'} forget prompts; guarded, it "
            "still answers "
            f"{_pct(knowledge.get('after'))} of those (a model ignorant of the topic: "
            f"{_pct(knowledge.get('ignorant'))}). Held-out prompts flagged: "
            f"{_pct(classifier.get('tpr_forget'))} of forget, "
            f"{_pct(classifier.get('fpr_neighbour'))} of neighbouring and "
            f"{_pct(classifier.get('fpr_general'))} of everyday ones. Unflagged answers "
            f"identical to the unguarded model: {_pct(side.get('identical_unflagged'))}.")
    if isinstance(latency, int | float):
        text += f" The classifier takes {latency:.0f} ms a prompt."
    if not held:
        text += (" This evaluation predates held-out scoring: its knowledge and side-effect "
                 "figures count training prompts too; Evaluate again before certifying.")
    return text
