"""The Train screen: train a pre-forgettable image model, or pretrain a backbone for isolated
mode, as an engine job with live loss, accuracy and time left (docs/design.md sections 4, 9)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import sentence, show_error
from gui.screen import Screen
from gui.table_model import TONES
from gui.train_form_widget import TrainForm
from gui.training_chart_widget import TrainingChart
from storage.queries_gui import model_kinds

TRAIN_JOB = "engine.image_jobs:train_model_job"
PRETRAIN_JOB = "engine.image_jobs:pretrain_backbone_job"


def duration_text(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def figures_text(data: dict[str, Any]) -> str:
    """'Epoch 3 of 40 · loss 0.831 · training accuracy 72.4% · about 1 min 20 s left'."""
    if "loss" not in data:
        return ""
    return (f"Epoch {data['epoch']} of {data['epochs']} · loss {data['loss']:.3f} · "
            f"training accuracy {data['accuracy']:.1%} · "
            f"about {duration_text(data['eta_s'])} left")


class TrainWidget(Screen):
    """The training form, its actions, and the running job's progress and result."""

    title = "Train"
    description = ("Train a pre-forgettable image classifier: every class gets its own prompt "
                   "token, so any class can later be forgotten in milliseconds. Isolated mode "
                   "gives isolated erasure (no shared weight learns from a class) and needs a "
                   "backbone pretrained on non-erasable data.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._job: JobHandle | None = None
        self._job_info: dict[str, Any] = {}
        self.form = TrainForm()
        self.train_button = QPushButton("Train")
        self.pretrain_button = QPushButton("Pretrain backbone…")
        self.pretrain_button.setToolTip("Train a backbone on the classes above, declared "
                                        "non-erasable (e.g. digits 0-4), for isolated models "
                                        "of other classes.")
        self.cancel_button = QPushButton("Cancel")
        self.problem_label = QLabel()
        self.status_label = QLabel("Nothing is training.")
        self.progress = QProgressBar()
        self.figures_label = QLabel()
        self.chart = TrainingChart()
        self.result_label = QLabel()
        for label in (self.problem_label, self.status_label, self.result_label):
            label.setWordWrap(True)
        self._build_layout()
        self._connect()
        self.refresh()
        self._show_idle()

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.train_button, self.pretrain_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        settings = QGroupBox("Configuration")
        left = QVBoxLayout(settings)
        left.addWidget(self.form)
        left.addLayout(buttons)
        left.addWidget(self.problem_label)
        left.addStretch(1)
        run = QGroupBox("Progress")
        right = QVBoxLayout(run)
        for widget in (self.status_label, self.progress, self.figures_label):
            right.addWidget(widget)
        right.addWidget(self.chart, 1)
        right.addWidget(self.result_label)
        row = QHBoxLayout()
        row.addWidget(settings, 4)
        row.addWidget(run, 5)
        self.body.addLayout(row, 1)

    def _connect(self) -> None:
        self.form.changed.connect(self._on_form_changed)
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.pretrain_button.clicked.connect(self._on_pretrain_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.ctx.registryChanged.connect(self.refresh)

    def refresh(self) -> None:
        """Reload the taken names and the registered backbones."""
        with self.ctx.workspace.sessions() as session:
            kinds = model_kinds(session)
        self.form.set_registry(set(kinds), [n for n, k in kinds.items() if k == "backbone"])

    def _update_actions(self) -> None:
        idle = self._job is None
        problem = self.form.problem()
        self.train_button.setEnabled(idle and not problem)
        self.pretrain_button.setEnabled(idle and not self.form.problem(pretrain=True))
        self.cancel_button.setEnabled(not idle)
        self.problem_label.setText(problem)

    def _on_form_changed(self) -> None:
        self._update_actions()

    # actions -----------------------------------------------------------------------------
    def _on_train_button_clicked(self) -> None:
        values = self.form.train_values()
        self._run("train", f"Training {values['name']}", TRAIN_JOB, values)

    def _on_pretrain_button_clicked(self) -> None:
        values = self.form.common_values()
        classes = ", ".join(values.get("classes") or ["every class"])
        answer = QMessageBox.question(
            self, "Pretrain a backbone",
            f"Pretrain backbone {values['name']!r} on {values['dataset']} ({classes})?\n\n"
            "These images are declared non-erasable: the backbone keeps what it learns from "
            "them, and nothing of them can be forgotten later. Train isolated models on other "
            "classes with it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self._run("pretrain", f"Pretraining backbone {values['name']}", PRETRAIN_JOB,
                      values)

    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None and self._job.cancel():
            self.cancel_button.setEnabled(False)
            self.status_label.setText(f"{self._job_info['title']}: cancelling…")

    def _run(self, kind: str, title: str, target: str, values: dict[str, Any]) -> None:
        self._job = self.ctx.submit_job(target, {"operator": self.ctx.operator, **values})
        self._job_info = {"kind": kind, "title": title, "name": values["name"]}
        self._job.waiting.connect(
            lambda reason: self.status_label.setText(f"{title}: waiting, {reason}…"))
        for signal, slot in ((self._job.started, self._on_job_started),
                             (self._job.progressed, self._on_job_progressed),
                             (self._job.succeeded, self._on_job_succeeded),
                             (self._job.failed, self._on_job_failed),
                             (self._job.finished, self._on_job_finished)):
            signal.connect(slot)
        self.chart.clear_points()
        self._show_result("", None)
        self.status_label.setText(f"{title}: queued…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.figures_label.setText("")
        self._update_actions()

    # the job's signals -------------------------------------------------------------------
    def _on_job_started(self) -> None:
        self.status_label.setText(f"{self._job_info['title']}: starting…")

    def _on_job_progressed(self, record: dict[str, Any]) -> None:
        fraction = record.get("fraction")
        if fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        if record.get("message"):
            self.status_label.setText(f"{self._job_info['title']}: {record['message']}")
        data = record.get("data") or {}
        if "loss" in data:
            self.figures_label.setText(figures_text(data))
            self.chart.add_point(data)

    def _on_job_succeeded(self, result: dict[str, Any]) -> None:
        self._show_result(_success_text(self._job_info["kind"], result), "ok")

    def _on_job_failed(self, message: str, _traceback: str) -> None:
        title = f"{self._job_info['title']} failed"
        self._show_result(f"✘ {title}: {sentence(message)}", "danger")
        show_error(self, title, message)

    def _on_job_finished(self, status: str) -> None:
        if status == "cancelled":
            self._show_result(f"{self._job_info['title']} was cancelled; nothing was "
                              "registered.", "warning")
        self._job = None
        self._show_idle(status)
        self.refresh()
        if status == "succeeded" and self._job_info["kind"] == "pretrain":
            self.form.choose_backbone(self._job_info["name"])
            self.form.mode_box.setCurrentText("isolated")

    def _show_idle(self, status: str = "") -> None:
        self.progress.setVisible(status == "succeeded")
        if status:
            self.status_label.setText(f"{self._job_info['title']}: {status}.")
        self._update_actions()

    def _show_result(self, text: str, tone: str | None) -> None:
        self.result_label.setText(text)
        self.result_label.setVisible(bool(text))
        if tone is not None:
            background, foreground = TONES[tone]
            self.result_label.setStyleSheet(f"background: {background}; color: {foreground};"
                                            " padding: 6px 8px; border-radius: 3px;")


def _success_text(kind: str, r: dict[str, Any]) -> str:
    if kind == "pretrain":
        return (f"✔ Backbone {r['name']} registered: test accuracy {r['test_accuracy']:.1%} in "
                f"{duration_text(r['seconds'])}. Train isolated models of other classes on it "
                "(it is now chosen under 'Backbone from').")
    return (f"✔ {r['name']} v{r['version']} registered: test accuracy "
            f"{r['test_accuracy']:.1%} in {duration_text(r['seconds'])} on {r['device']} "
            f"({r['mode']} mode, {r['erasure_kind']} erasure). Forget any of its "
            f"{len(r['classes'])} classes in the Models screen.")
