"""The Audits screen: run an erasure audit as an engine job and review stored audits, every
chart beside the retrain reference (docs/design.md section 5). Figures come from the registry's
AuditRun rows (``storage.audits``), so this process never loads torch."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.audit_charts_widget import AccuracyBarsChart, RelearnChart
from gui.audit_summary_widget import AuditSummary
from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import show_error
from gui.formatting import local_time
from gui.membership_panel_widget import MembershipPanel
from gui.people_audit_widget import PEOPLE_JOB, PeoplePanel, people_job_options, people_problem
from gui.screen import Screen, refill
from storage import audits
from storage.queries_gui import audit_targets

AUDIT_JOB = "engine.audit.job:audit_job"
PER_CLASS = 1000  # engine.audit.job.PER_CLASS (not imported here: the engine loads torch)
RELEARN_SEEDS = 5  # engine.audit.job.RELEARN_SEEDS


class AuditsWidget(Screen):
    """Pick a model and one of its audits; run a new audit; read the charts."""

    title = "Audits"
    description = ("Membership-inference and relearn audits of a model whose classes were "
                   "forgotten, each figure next to a reference model retrained without "
                   "them. A finished audit marks the executed requests as verified.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._targets: dict[str, dict[str, Any]] = {}
        self._audit: dict[str, Any] | None = None
        self._job: JobHandle | None = None
        self._new_run: int | None = None
        self._build_controls()
        self._build_views()
        self._connect()
        self.refresh()

    # layout ------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.model_box, self.audit_box = QComboBox(), QComboBox()
        self.model_box.setMinimumWidth(180)
        self.audit_box.setMinimumWidth(260)
        self.request_box = QComboBox()
        self.request_box.setToolTip("Erasure requests executed by forgetting classes: an "
                                    "audit of their model verifies them.")
        self._request_models: dict[int, str] = {}
        self._runs: list[dict[str, Any]] = []
        self.reference_check = QCheckBox("Retrain reference")
        self.reference_check.setChecked(True)
        self.reference_check.setToolTip("Train (or reuse) the same model without the "
                                        "forgotten classes, and audit it the same way.")
        self.relearn_check = QCheckBox("Relearn attack")
        self.relearn_check.setChecked(True)
        self.lira_spin = _spin(0, 64, 0, "LiRA: ", "Offline LiRA with K shadow models "
                               "(K >= 2; each one trains a model).", special="off",
                               suffix=" shadows")
        self.samples_spin = _spin(10, 100_000, PER_CLASS, "",
                                  "Audit samples per class and split.", suffix=" per class")
        self.epochs_spin = _spin(1, 200, 10, "", "Epochs of each relearn attack.",
                                 suffix=" epochs")
        self.seeds_spin = _spin(1, 50, RELEARN_SEEDS, "", "Relearn seeds: the interval of a "
                                "relearn figure needs at least 3 (docs/design.md section 15).",
                                suffix=" seeds")
        self.run_button, self.cancel_button = QPushButton("Run audit"), QPushButton("Cancel")
        self.progress, self.status_label = QProgressBar(), QLabel()
        self.progress.setMaximumWidth(200)
        self.status_label.setWordWrap(True)
        pick = QHBoxLayout()
        for widget in (QLabel("Request"), self.request_box, QLabel("Model"), self.model_box,
                       QLabel("Audit"), self.audit_box):
            pick.addWidget(widget)
        pick.addStretch(1)
        run = QHBoxLayout()
        for widget in (self.reference_check, self.relearn_check, self.epochs_spin,
                       self.seeds_spin, self.lira_spin, self.samples_spin, self.run_button,
                       self.cancel_button, self.progress):
            run.addWidget(widget)
        run.addWidget(self.status_label, 1)
        self.body.addLayout(pick)
        self.body.addLayout(run)

    def _build_views(self) -> None:
        self.summary = AuditSummary()
        self.accuracy_chart, self.relearn_chart = AccuracyBarsChart(), RelearnChart()
        self.membership = MembershipPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._accuracy_tab(), "Accuracy and relearn")
        self.tabs.addTab(self.membership, "Membership inference")
        self.people = PeoplePanel()
        self.tabs.addTab(self.people, "People (TOFU / MUSE)")
        splitter = QSplitter()
        splitter.addWidget(self.summary)
        splitter.addWidget(self.tabs)
        splitter.setSizes([380, 700])
        splitter.setChildrenCollapsible(False)
        self.body.addWidget(splitter, 1)

    def _accuracy_tab(self) -> QWidget:
        tab = QWidget()
        column = QVBoxLayout(tab)
        column.addWidget(self.accuracy_chart, 3)
        column.addWidget(self.relearn_chart, 2)
        return tab

    def _connect(self) -> None:
        self.model_box.currentIndexChanged.connect(self._on_model_box_currentIndexChanged)
        self.request_box.currentIndexChanged.connect(
            self._on_request_box_currentIndexChanged)
        self.audit_box.currentIndexChanged.connect(self._on_audit_box_currentIndexChanged)
        self.relearn_check.toggled.connect(self.epochs_spin.setEnabled)
        self.relearn_check.toggled.connect(self.seeds_spin.setEnabled)
        self.lira_spin.valueChanged.connect(self._update_actions)
        self.run_button.clicked.connect(self._on_run_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.ctx.registryChanged.connect(self.refresh)

    # registry ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the models and the selected model's audits."""
        with self.ctx.workspace.sessions() as session:
            self._targets = {t["name"]: t for t in audit_targets(session)}
        refill(self.model_box, list(self._targets))
        self._fill_requests()
        self._load_audits()

    def _fill_requests(self) -> None:
        found = [(r, t["name"]) for t in self._targets.values() for r in t["requests"]]
        self._request_models = {r["id"]: model for r, model in found}
        current = self.request_box.currentData()
        self.request_box.blockSignals(True)
        self.request_box.clear()
        self.request_box.addItem("any", None)
        for request, model in sorted(found, key=lambda f: f[0]["id"]):
            self.request_box.addItem(f"#{request['id']} · {model} ({request['status']})",
                                     request["id"])
        self.request_box.setCurrentIndex(max(0, self.request_box.findData(current)))
        self.request_box.blockSignals(False)

    def select(self, model: str, audit_run: int | None = None) -> None:
        """Show ``model`` and one of its audits (the newest when None)."""
        self.model_box.setCurrentText(model)
        if audit_run is not None:
            self.audit_box.setCurrentIndex(max(0, self.audit_box.findData(audit_run)))

    def _load_audits(self, keep: int | None = None) -> None:
        name = self.model_box.currentText()
        keep = keep if keep is not None else self.audit_box.currentData()
        runs = []
        if name:
            with self.ctx.workspace.sessions() as session:
                runs = (audits.people_audits(session, name) if self._is_people()
                        else audits.list_audits(session, name))
        self._runs = runs
        self.audit_box.blockSignals(True)
        self.audit_box.clear()
        for run in runs:
            self.audit_box.addItem(_run_title(run), run["id"])
        if not runs:
            self.audit_box.addItem("no audit yet", None)
        self.audit_box.setCurrentIndex(max(0, self.audit_box.findData(keep)))
        self.audit_box.blockSignals(False)
        self._update_actions()
        self._on_audit_box_currentIndexChanged()

    # actions -----------------------------------------------------------------------------
    def problem(self) -> str:
        """Why an audit cannot run now ('' when it can)."""
        target = self._targets.get(self.model_box.currentText())
        if target is None:
            return "Train an image model and forget a class first."
        if target.get("people"):
            return "An audit is running." if self._job is not None else people_problem(
                target, self.request_box.currentData())
        if not target["forgotten"]:
            return f"{target['name']} has no forgotten class: there is no erasure to audit."
        if self._job is not None:
            return "An audit is running."
        if self.lira_spin.value() == 1:
            return "LiRA needs at least 2 shadow models."
        return ""

    def _update_actions(self) -> None:
        problem = self.problem()
        self.run_button.setEnabled(not problem)
        self.run_button.setToolTip(problem)
        self.cancel_button.setEnabled(self._job is not None)
        self.progress.setVisible(self._job is not None)
        if self._job is None:
            self.status_label.setText("" if problem.startswith("An audit") else problem)

    def audit_options(self) -> dict[str, Any]:
        """The audit job's keyword arguments (besides workspace and operator)."""
        return {"model_name": self.model_box.currentText(),
                "reference": self.reference_check.isChecked(),
                "relearn": self.relearn_check.isChecked(), "lira": self.lira_spin.value(),
                "per_class": self.samples_spin.value(),
                "relearn_epochs": self.epochs_spin.value(),
                "relearn_seeds": self.seeds_spin.value()}

    def _is_people(self) -> bool:
        return bool((self._targets.get(self.model_box.currentText()) or {}).get("people"))

    def _on_run_button_clicked(self) -> None:
        if self._is_people():  # `guard eval` of the person's rule (docs/design.md 14)
            job, options = PEOPLE_JOB, people_job_options(
                self._targets[self.model_box.currentText()], self.request_box.currentData())
        else:
            job, options = AUDIT_JOB, self.audit_options()
        self._job = self.ctx.submit_job(job, {"operator": self.ctx.operator, **options})
        self._job.progressed.connect(self._on_job_progressed)
        self._job.waiting.connect(lambda reason: self.status_label.setText(
            f"Auditing {self.model_box.currentText()}: waiting, {reason}…"))
        self._job.succeeded.connect(self._on_job_succeeded)
        self._job.failed.connect(self._on_job_failed)
        self._job.finished.connect(self._on_job_finished)
        self.progress.setRange(0, 0)
        self._update_actions()
        self.status_label.setText(f"Auditing {self.model_box.currentText()}: queued…")

    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None and self._job.cancel():
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling the audit…")

    def _on_job_progressed(self, record: dict[str, Any]) -> None:
        if record.get("fraction") is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * record["fraction"]))
        self.status_label.setText(f"Auditing: {record.get('message', '')}")

    def _on_job_succeeded(self, result: dict[str, Any]) -> None:
        self._new_run = result.get("audit_run")

    def _on_job_failed(self, message: str, _traceback: str) -> None:
        show_error(self, "The audit failed", message)

    def _on_job_finished(self, status: str) -> None:
        self._job = None
        new_run, self._new_run = self._new_run, None
        self.refresh()
        if status == "succeeded" and new_run is not None:
            self.audit_box.setCurrentIndex(max(0, self.audit_box.findData(new_run)))
        self.status_label.setText({
            "succeeded": "The audit is stored and shown below.",
            "cancelled": "The audit was cancelled; nothing was stored.",
        }.get(status, "The audit failed; nothing was stored."))

    # showing an audit --------------------------------------------------------------------
    def _on_model_box_currentIndexChanged(self, _index: int = 0) -> None:  # noqa: N802
        request = self.request_box.currentData()
        if request is not None and self._request_models.get(request) != \
                self.model_box.currentText():
            self.request_box.blockSignals(True)
            self.request_box.setCurrentIndex(0)  # that request concerns another model
            self.request_box.blockSignals(False)
        self._load_audits()

    def _on_request_box_currentIndexChanged(self, _index: int = 0) -> None:  # noqa: N802
        """Show the request's model and the newest audit that verified it."""
        request = self.request_box.currentData()
        if request is None:
            return
        self.model_box.setCurrentText(self._request_models[request])
        verifying = [r["id"] for r in self._runs if r.get("request") == request]
        if verifying:
            self.audit_box.setCurrentIndex(self.audit_box.findData(verifying[0]))
        self._update_actions()

    def _on_audit_box_currentIndexChanged(self, _index: int = 0) -> None:  # noqa: N802
        run_id = self.audit_box.currentData()
        self._audit = None
        if run_id is not None:
            with self.ctx.workspace.sessions() as session:
                self._audit = (audits.get_people_audit(session, run_id) if self._is_people()
                               else audits.get_audit(session, run_id))
        self._draw()

    @property
    def audit(self) -> dict[str, Any] | None:
        """The audit shown (``storage.audits.get_audit``'s dict with curves), if any."""
        return self._audit

    def _draw(self) -> None:
        people = self._is_people()
        audit = {} if people else self._audit or {}
        curves = audit.get("curves") or {}
        self.summary.show_audit(audit or None)
        self.accuracy_chart.show_curves(curves)
        self.relearn_chart.show_curves(curves)
        self.membership.show_audit(audit or None)
        self.people.show_audit(self._audit if people else None)
        self.summary.setVisible(not people)  # image figures; a person's are in the tab
        for widget in (self.reference_check, self.relearn_check, self.lira_spin,
                       self.samples_spin):
            widget.setEnabled(not people)  # image-audit options (`guard eval` has none)
        for widget in (self.epochs_spin, self.seeds_spin):
            widget.setEnabled(not people and self.relearn_check.isChecked())
        for index in range(2):
            self.tabs.setTabEnabled(index, not people)
        self.tabs.setTabEnabled(2, people)
        if people or self.tabs.currentIndex() == 2:
            self.tabs.setCurrentIndex(2 if people else 0)


def _spin(low: int, high: int, value: int, prefix: str, tip: str, special: str = "",
          suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setPrefix(prefix)
    spin.setSuffix(suffix)
    spin.setSpecialValueText(f"{prefix}{special}" if special else "")
    spin.setToolTip(tip)
    return spin


def _run_title(run: dict[str, Any]) -> str:
    config = run.get("config") or {}
    subject = (run.get("metrics") or {}).get("subject")
    reference = "no reference" if subject and subject["reference"].get("missing") else \
        "with reference" if subject or config.get("reference") else "no reference"
    parts = [f"#{run['id']}", local_time(run["created_at"]), f"v{run['version']}", reference]
    if subject:
        parts.insert(3, f"rule {config.get('rule')}")
    if run.get("request"):
        parts.append(f"request #{run['request']}")
    return " · ".join(parts)
