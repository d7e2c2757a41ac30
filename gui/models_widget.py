"""The Models screen: models, their version lineage and classes; evaluate, forget classes,
learn a class (docs/design.md sections 3, 4 and 8). Every action runs as an engine job."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.job_classes import INTERACTIVE, LONG, job_class
from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import reporting_errors
from gui.forget_dialog import ForgetDialog
from gui.learn_dialog import LearnDialog
from gui.model_jobs import ModelJobs
from gui.model_tables import (
    MODEL_COLUMNS,
    VERSION_COLUMNS,
    artifact_hashes,
    class_columns,
    class_tone,
    classes_hint,
    lineage_text,
    live_accuracy,
    select_records,
    selected_record,
    version_tone,
)
from gui.result_panel_widget import ResultPanel
from gui.retrain_action import RETRAIN_JOB, confirm_retrain, pending_models
from gui.screen import Screen
from gui.table_model import Record, RecordTableModel, record_table, sorted_proxy
from gui.try_it_widget import TryItPanel
from storage.queries_gui import approved_class_requests, model_overview
from storage.registry import get_model
from storage.versions import classes_to_forget

FORGET_JOB = "engine.forget:forget_job"
EVALUATE_JOB = "engine.image_jobs:evaluate_model"
LEARN_JOB = "engine.image_jobs:learn_job"
LANES = {"forget": job_class(FORGET_JOB), "evaluate": job_class(EVALUATE_JOB),
         "learn": job_class(LEARN_JOB), "retrain": job_class(RETRAIN_JOB)}
# a forget or an evaluation runs during a learn or a retrain (long)


def _section(title: str, *widgets: QWidget) -> QWidget:
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    heading = QLabel(title)
    font = heading.font()
    font.setBold(True)
    heading.setFont(font)
    column.addWidget(heading)
    for widget in widgets:
        column.addWidget(widget, 1 if isinstance(widget, QTableView) else 0)
    return box


class ModelsWidget(ModelJobs, Screen):
    """Registered models; select learned classes and press Forget… to erase them."""

    title = "Models"
    lanes = LANES
    description = ("Registered models with their versions and classes. Select learned classes "
                   "and press Forget… to erase them: a new version without their prompts, the "
                   "old weights destroyed, a residual scan and accuracy before and after.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._records: list[Record] = []
        self._measured: dict[tuple[str, int], dict[str, float]] = {}
        self._accuracy: dict[str, float] = {}  # the class table's column reads it
        # one job per class (engine.job_classes): a forget or an evaluation runs while this
        # screen's learn runs; the result panel follows the job started last
        self._jobs: dict[str, tuple[JobHandle, dict[str, Any]]] = {}
        self._shown: int | None = None
        self.models = RecordTableModel(MODEL_COLUMNS)
        self.models_table = record_table(sorted_proxy(self.models, self))
        self.versions = RecordTableModel(VERSION_COLUMNS, tone=version_tone)
        self.versions_table = record_table(sorted_proxy(self.versions, self))
        self.classes = RecordTableModel(class_columns(self._accuracy), tone=class_tone)
        self.classes_table = record_table(sorted_proxy(self.classes, self), multi=True)
        self.lineage_label = QLabel()
        self.classes_hint = QLabel()
        for label in (self.lineage_label, self.classes_hint):
            label.setWordWrap(True)
        self.evaluate_button = QPushButton("Evaluate")
        self.forget_button = QPushButton("Forget…")
        self.learn_button = QPushButton("Learn class…")
        self.retrain_button = QPushButton("Retrain…")
        self.retrain_button.setToolTip("Retrain without every forgotten class: the requests "
                                       "waiting on this model become exact")
        self._plans: dict[str, dict[str, Any]] = {}
        self.refresh_button = QPushButton("Refresh")
        self.summary = QLabel()
        self.background_label = QLabel()  # a long job's progress while the panel shows another
        self.result_panel = ResultPanel()
        self.try_it = TryItPanel(ctx)
        self.copy_action = QAction("Copy artifact hashes", self.versions_table)
        self._build_layout()
        self._connect()
        self.refresh()

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        for button in (self.evaluate_button, self.forget_button, self.learn_button,
                       self.retrain_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.summary)
        row.addWidget(self.refresh_button)
        self.body.addLayout(row)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(_section("Models", self.models_table))
        left.addWidget(_section("Versions", self.lineage_label, self.versions_table))
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(_section("Classes", self.classes_table, self.classes_hint))
        top.setSizes([600, 440])
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.background_label)
        results = QHBoxLayout()
        results.addWidget(self.result_panel, 3)
        results.addWidget(self.try_it, 2)
        column.addLayout(results, 1)
        self.background_label.setVisible(False)
        outer.addWidget(panel)
        outer.setSizes([430, 230])
        outer.setChildrenCollapsible(False)
        self.body.addWidget(outer, 1)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.versions_table.addAction(self.copy_action)
        header = self.classes_table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the class name
        self.versions_table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def _connect(self) -> None:
        self.models_table.selectionModel().selectionChanged.connect(
            self._on_models_table_selectionChanged)
        self.classes_table.selectionModel().selectionChanged.connect(
            self._on_classes_table_selectionChanged)
        self.evaluate_button.clicked.connect(self._on_evaluate_button_clicked)
        self.forget_button.clicked.connect(self._on_forget_button_clicked)
        self.learn_button.clicked.connect(self._on_learn_button_clicked)
        self.retrain_button.clicked.connect(self._on_retrain_button_clicked)
        self.refresh_button.clicked.connect(self.refresh)
        self.copy_action.triggered.connect(self._on_copy_action_triggered)
        self.ctx.registryChanged.connect(self.refresh)

    # what is shown -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload from the registry, keeping the selected model and classes."""
        name, chosen = self.selected_model_name(), self.selected_class_names()
        with self.ctx.workspace.sessions() as session:
            self._records = model_overview(session)
        self._plans = pending_models(self.ctx)
        self.models.set_records(self._records)
        self.models_table.resizeColumnsToContents()
        count = len(self._records)
        self.summary.setText(f"{count} model{'' if count == 1 else 's'}")
        self.select_model(name or (self._records[0]["name"] if self._records else None))
        self.select_classes(chosen)

    def selected_model(self) -> Record | None:
        return selected_record(self.models_table, self.models)

    def selected_model_name(self) -> str | None:
        model = self.selected_model()
        return model["name"] if model else None

    def selected_class_names(self) -> list[str]:
        rows = self.classes_table.selectionModel().selectedRows()
        proxy = self.classes_table.model()
        return [self.classes.record(proxy.mapToSource(i).row())["name"] for i in rows]

    def select_model(self, name: str | None) -> None:
        select_records(self.models_table, self.models, "name", [name])
        self._show_model(self.selected_model())

    def select_classes(self, names: list[str]) -> None:
        select_records(self.classes_table, self.classes, "name", names)
        self._update_actions()

    def _show_model(self, model: Record | None) -> None:
        versions = model["versions"] if model else []
        self.versions.set_records(versions)
        self.versions_table.resizeColumnsToContents()
        self.lineage_label.setText(f"Lineage: {lineage_text(versions)}" if versions else "")
        self._accuracy.clear()
        if model is not None:
            key = (model["name"], model["live_version"])
            self._accuracy.update(self._measured.get(key) or live_accuracy(model))
            self._accuracy.update({c["name"]: 0.0 for c in model["classes"]
                                   if c["status"] == "forgotten"})
        self.classes.set_records(model["classes"] if model else [])
        usable = bool(model and model["kind"] == "image" and model["live_version"])
        self.try_it.set_model(model["name"] if usable else None)
        self._update_actions()

    def _update_actions(self) -> None:
        model, names = self.selected_model(), self.selected_class_names()
        usable = bool(model and model["kind"] == "image" and model["live_version"])
        idle = INTERACTIVE not in self._jobs  # forget / evaluate: interactive
        self.evaluate_button.setEnabled(usable and idle)
        self.learn_button.setEnabled(usable and LONG not in self._jobs)
        self.retrain_button.setEnabled(bool(model) and LONG not in self._jobs
                                       and model["name"] in self._plans)  # LMs too
        learned = {c["name"] for c in model["classes"] if c["status"] == "learned"} \
            if model else set()
        self.forget_button.setEnabled(usable and idle and bool(names)
                                      and set(names) <= learned)
        self.classes_hint.setText(classes_hint(model, names, learned, idle))

    def _on_models_table_selectionChanged(self, *_args: Any) -> None:  # noqa: N802
        self._show_model(self.selected_model())

    def _on_classes_table_selectionChanged(self, *_args: Any) -> None:  # noqa: N802
        self._update_actions()

    def _on_copy_action_triggered(self) -> None:
        version = selected_record(self.versions_table, self.versions)
        if version is not None:
            QApplication.clipboard().setText(artifact_hashes(version))

    # actions -----------------------------------------------------------------------------
    def _on_forget_button_clicked(self) -> None:
        model, names = self.selected_model(), self.selected_class_names()
        with reporting_errors(self, f"Cannot forget classes of {model['name']}"):
            with self.ctx.workspace.sessions() as session:
                classes_to_forget(get_model(session, model["name"]), names)  # refuses early
                requests = approved_class_requests(session, model["name"])
            dialog = ForgetDialog(model, names, requests, self)
            accepted = dialog.exec() == QDialog.DialogCode.Accepted
            request_id = dialog.request_id()
            dialog.deleteLater()
            if accepted:
                self.start_forget(model["name"], names, request_id)

    def start_forget(self, model_name: str, classes: list[str], request_id: int | None) -> None:
        """Run ``forget_job``; the result panel shows its figures or its refusal."""
        self._run("forget", f"Forgetting {', '.join(classes)} from {model_name}",
                  FORGET_JOB, {"model_name": model_name, "classes": classes,
                               "operator": self.ctx.operator, "request": request_id},
                  request=request_id)

    def _on_evaluate_button_clicked(self) -> None:
        model = self.selected_model()
        self._run("evaluate", f"Evaluating {model['name']} v{model['live_version']}",
                  EVALUATE_JOB, {"model_name": model["name"]})

    def _on_learn_button_clicked(self) -> None:
        model = self.selected_model()
        dialog = LearnDialog(model, self)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        values = dialog.values()
        dialog.deleteLater()
        if accepted:
            self.start_learn(model["name"], values)

    def _on_retrain_button_clicked(self) -> None:
        plan = self._plans.get(self.selected_model_name() or "")
        if plan is not None and confirm_retrain(self, plan):
            self._run("retrain", f"Retraining {plan['model']}", RETRAIN_JOB,
                      {"model_name": plan["model"], "operator": self.ctx.operator,
                       "requests": []})

    def start_learn(self, model_name: str, values: dict[str, Any]) -> None:
        """Run ``learn_job`` (long): Forget… and Evaluate stay usable while it runs."""
        self._run("learn", f"Learning {values['class_name']} in {model_name}", LEARN_JOB,
                  {"model_name": model_name, "operator": self.ctx.operator, **values})
