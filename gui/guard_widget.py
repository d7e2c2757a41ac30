"""The language-model guard screen: forget rules with their status, the rule editor and a test
console (docs/design.md section 6). Training, answering and status changes run as engine jobs
(``engine.guard.registry_jobs``); the rules are read from the registry."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.job_classes import INTERACTIVE, LONG, job_class
from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import sentence, show_error
from gui.guard_console_widget import GuardConsole
from gui.rule_editor_widget import RuleEditor
from gui.screen import Screen, refill
from gui.table_model import Column, RecordTableModel, record_table
from storage.queries_gui import guard_overview

GUARD_JOBS = "engine.guard.registry_jobs"
JOBS = GUARD_JOBS  # the tests swap in stand-ins; the job classes stay those of GUARD_JOBS
RULE_COLUMNS = [
    Column("Rule", lambda r: r["name"], tooltip=lambda r: r["description"]),
    Column("Status", lambda r: r["status"]),
    Column("Version", lambda r: str(r["version"])),
    Column("Threshold", lambda r: f"{r['threshold']:.3f}"),
    Column("TPR", lambda r: _rate(r["calibration"].get("tpr"))),
    Column("FPR", lambda r: _rate(r["calibration"].get("fpr"))),
    Column("Requests", lambda r: ", ".join(f"#{q['id']} {q['status']}"
                                           for q in r["requests"])),
]


def _rate(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "—"


class GuardWidget(Screen):
    """Rules of the selected language model; the editor and the console on the right."""

    title = "Language-model guard"
    description = ("Forget rules for a language model: a prompt classifier flags prompts "
                   "about a forgotten topic and the model answers them from corrupted "
                   "embeddings. Train a rule from example prompts, then test it.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._models: dict[str, dict[str, Any]] = {}
        # one job per class (engine.job_classes): enable, disable, evaluate and ask run
        # while this screen's rule build or model load runs
        self._jobs: dict[str, JobHandle] = {}
        self._temp: Path | None = None
        self.model_box = QComboBox()
        self.model_box.setMinimumWidth(200)
        self.load_button = QPushButton("Load model")
        self.load_button.setToolTip("Load and check the language model (default: the offline "
                                    "SmolLM2-135M-Instruct) in the engine worker.")
        self.demo_button = QPushButton("Add the demo rule")
        self.demo_button.setToolTip("Train the shipped rule 'harry-potter' (a few minutes).")
        self.progress, self.status_label = QProgressBar(), QLabel()
        self.progress.setMaximumWidth(180)
        self.status_label.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.rules = RecordTableModel(RULE_COLUMNS, tone=_tone)
        self.rules_view = record_table(self.rules)
        self.new_button, self.enable_button = QPushButton("New rule"), QPushButton("Enable")
        self.disable_button, self.eval_button = QPushButton("Disable"), QPushButton("Evaluate")
        self.eval_button.setToolTip("Measure the rule (knowledge before / after, side "
                                    "effects, classifier rates); verifies its requests.")
        self.request_box = QComboBox()
        self.editor, self.console = RuleEditor(), GuardConsole()
        self._build_layout()
        self._connect()
        self.refresh()

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        for widget in (QLabel("Language model"), self.model_box, self.load_button,
                       self.demo_button, self.progress, self.cancel_button):
            top.addWidget(widget)
        top.addWidget(self.status_label, 1)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.rules_view, 1)
        buttons = QHBoxLayout()
        for widget in (self.new_button, self.enable_button, self.request_box,
                       self.disable_button, self.eval_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        column.addLayout(buttons)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.editor, "Rule")
        self.tabs.addTab(self.console, "Test console")
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setSizes([430, 620])
        splitter.setChildrenCollapsible(False)
        self.body.addLayout(top)
        self.body.addWidget(splitter, 1)

    def _connect(self) -> None:
        self.model_box.currentIndexChanged.connect(self._show_rules)
        self.rules_view.selectionModel().selectionChanged.connect(self._on_rules_selected)
        self.load_button.clicked.connect(self._on_load_button_clicked)
        self.demo_button.clicked.connect(self._on_demo_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.new_button.clicked.connect(self._on_new_button_clicked)
        self.enable_button.clicked.connect(lambda: self._set_status(True))
        self.disable_button.clicked.connect(lambda: self._set_status(False))
        self.eval_button.clicked.connect(self._on_eval_button_clicked)
        self.request_box.currentIndexChanged.connect(self._update_actions)
        self.editor.trainRequested.connect(self._on_editor_trainRequested)
        self.editor.retrainRequested.connect(self._on_editor_retrainRequested)
        self.console.askRequested.connect(self._on_console_askRequested)
        self.ctx.registryChanged.connect(self.refresh)

    # registry ----------------------------------------------------------------------------
    def refresh(self) -> None:
        with self.ctx.workspace.sessions() as session:
            self._models = {m["name"]: m for m in guard_overview(session)}
        refill(self.model_box, list(self._models))
        self._show_rules()

    def _show_rules(self) -> None:
        keep = (self.selected_rule() or {}).get("name")
        model = self._models.get(self.model_box.currentText()) or {}
        self.rules.set_records(model.get("rules") or [])
        self.rules_view.resizeColumnsToContents()
        row = self.rules.row_where("name", keep) if keep else -1
        if row >= 0:
            self.rules_view.selectionModel().select(
                self.rules.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
        self._on_rules_selected()

    def selected_rule(self) -> dict[str, Any] | None:
        rows = self.rules_view.selectionModel().selectedRows() if self.rules.rowCount() else []
        return self.rules.record(rows[0].row()) if rows else None

    def select_rule(self, name: str) -> None:
        row = self.rules.row_where("name", name)
        self.rules_view.selectRow(row)

    def _on_rules_selected(self, *_args: Any) -> None:
        rule = self.selected_rule()
        if rule is not None:
            self.editor.show_rule(rule)
        elif self.editor.rule is not None:
            self.editor.new_rule()
        self.request_box.clear()
        self.request_box.addItem("no request", None)
        for request in (rule or {}).get("requests") or []:
            if request["status"] == "approved":
                self.request_box.addItem(f"executing request #{request['id']}", request["id"])
        self.request_box.setCurrentIndex(self.request_box.count() - 1)
        self._update_actions()

    @property
    def _job(self) -> JobHandle | None:
        """The job started last that is still in flight (Cancel stops it), else None."""
        jobs = sorted(self._jobs.values(), key=lambda handle: handle.job_id)
        return jobs[-1] if jobs else None

    def _update_actions(self) -> None:
        idle, rule = INTERACTIVE not in self._jobs, self.selected_rule()
        building = LONG in self._jobs
        self.load_button.setEnabled(not building)
        self.demo_button.setEnabled(not building and not any(
            r["name"] == "harry-potter" for m in self._models.values() for r in m["rules"]))
        self.cancel_button.setVisible(bool(self._jobs))
        self.progress.setVisible(bool(self._jobs))
        active = bool(rule) and rule["status"] == "active"
        self.enable_button.setEnabled(idle and bool(rule) and (
            not active or self.request_box.currentData() is not None))
        self.request_box.setVisible(self.request_box.count() > 1)
        self.disable_button.setEnabled(idle and active)
        self.eval_button.setEnabled(idle and bool(rule) and rule["trained"])
        self.editor.setEnabled(not building)
        self.editor.update_actions()
        self.console.set_busy(not idle)

    # jobs --------------------------------------------------------------------------------
    def _run(self, title: str, function: str, kwargs: dict[str, Any],
             done: Any = None) -> JobHandle:
        """Run ``engine.guard.registry_jobs:<function>``; ``done(result)`` on success."""
        model = self.model_box.currentText()  # none registered yet: the offline default
        options = {"model": model, **kwargs} if model else kwargs
        lane = job_class(f"{GUARD_JOBS}:{function}")
        handle = self.ctx.submit_job(f"{JOBS}:{function}", options, lane=lane)
        self._jobs[lane] = handle
        handle.progressed.connect(lambda r: self._on_job_progressed(title, r))
        handle.waiting.connect(
            lambda reason: self.status_label.setText(f"{title}: waiting, {reason}…"))
        if done is not None:
            handle.succeeded.connect(done)
        handle.failed.connect(lambda message, _tb: self._on_job_failed(title, message))
        handle.finished.connect(lambda status: self._on_job_finished(title, status, lane))
        self.progress.setRange(0, 0)
        self.status_label.setText(f"{title}: queued…")
        self._update_actions()
        return handle

    def _on_job_progressed(self, title: str, record: dict[str, Any]) -> None:
        if record.get("fraction") is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * record["fraction"]))
        self.status_label.setText(f"{title}: {record.get('message', '')}")

    def _on_job_failed(self, title: str, message: str) -> None:
        self.console.show_message(f"{title} failed: {sentence(message)}", "danger")
        show_error(self, f"{title} failed", message)

    def _on_job_finished(self, title: str, status: str, lane: str) -> None:
        self._jobs.pop(lane, None)
        if self._temp is not None and lane == LONG:  # the examples of a rule build
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
        self.status_label.setText(f"{title}: {status}.")
        self.refresh()

    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None and self._job.cancel():
            self.status_label.setText("Cancelling…")

    def _on_load_button_clicked(self) -> None:
        self._run("Loading the language model", "load_model_job",
                  {"operator": self.ctx.operator})

    def _on_demo_button_clicked(self) -> None:
        self._run("Training the demo rule", "add_rule_job",
                  {"operator": self.ctx.operator, "demo": True})

    def _on_new_button_clicked(self) -> None:
        self.rules_view.clearSelection()
        self.editor.new_rule()
        self.tabs.setCurrentWidget(self.editor)

    def _on_editor_trainRequested(self, values: dict[str, Any]) -> None:  # noqa: N802
        self._temp = Path(tempfile.mkdtemp(prefix="unprompt-rule-"))
        forget, retain = self._temp / "forget.txt", self._temp / "retain.txt"
        forget.write_text("\n".join(values["forget"]) + "\n", encoding="utf-8")
        options = {"operator": self.ctx.operator, "name": values["name"],
                   "description": values["description"], "forget_file": str(forget),
                   "target_fpr": values["target_fpr"]}
        if values["retain"]:
            retain.write_text("\n".join(values["retain"]) + "\n", encoding="utf-8")
            options["retain_file"] = str(retain)
        self._run(f"Training rule {values['name']!r}", "add_rule_job", options)

    def _on_editor_retrainRequested(self, values: dict[str, Any]) -> None:  # noqa: N802
        self._run(f"Retraining rule {values['rule']!r}", "retrain_rule_job",
                  {"operator": self.ctx.operator, **values})

    def _set_status(self, enabled: bool) -> None:
        rule = self.selected_rule()
        options = {"operator": self.ctx.operator, "rule": rule["name"], "enabled": enabled}
        if enabled and self.request_box.currentData() is not None:
            options["request"] = self.request_box.currentData()
        verb = "Enabling" if enabled else "Disabling"
        self._run(f"{verb} rule {rule['name']!r}", "set_rule_status", options)

    def _on_eval_button_clicked(self) -> None:
        rule = self.selected_rule()["name"]
        self._run(f"Evaluating rule {rule!r}", "evaluate_rule_job",
                  {"operator": self.ctx.operator, "rule": rule},
                  lambda _result: self.tabs.setCurrentWidget(self.editor))

    def _on_console_askRequested(self, prompt: str, tokens: int) -> None:  # noqa: N802
        thresholds = {r["name"]: r["threshold"] for r in self.rules.records()}
        self.console.show_message("Answering (the first question loads the model)…")
        self.tabs.setCurrentWidget(self.console)
        self._run("Answering", "ask_job", {"prompts": [prompt], "max_new_tokens": tokens,
                                           "unguarded": True},
                  lambda r: self.console.show_answer((r.get("answers") or [None])[0],
                                                     thresholds))


def _tone(rule: dict[str, Any]) -> str | None:
    return "muted" if rule["status"] != "active" else None
