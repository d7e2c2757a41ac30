"""First start: on an empty workspace, offer to build the demo as background jobs, so that a
new operator can forget a class within minutes of ``make run``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import JobHandle
from gui.context import AppContext
from gui.demo_jobs import (  # noqa: F401  (the demo's names, for its callers and tests)
    BACKBONE_JOB,
    DEMO_BACKBONE,
    DEMO_CLASSES,
    DEMO_MODEL,
    DEMO_PERSON,
    DIGITS_JOB,
    PEOPLE_JOBS,
    PEOPLE_MINUTES,
    PEOPLE_MODEL,
    PEOPLE_RETAIN,
    PEOPLE_SIZE,
    PUBLIC_CLASSES,
    RULE_JOB,
    SUGGESTED_JOB,
    DemoJob,
    demo_jobs,
    job_exists,
    offline_model_installed,
    people_demo,
)
from gui.errors import sentence
from gui.train_widget import duration_text
from storage.queries_gui import model_kinds

INFO = ("#e8f1fb", "#1b4f80")


def workspace_is_empty(ctx: AppContext) -> bool:
    with ctx.workspace.sessions() as session:
        return not model_kinds(session)


class DemoBanner(QFrame):
    """A non-blocking offer above the screens: build the demo (and the people demo when the
    operator ticks it), follow it, open Models (and Requests for the people demo)."""

    openScreenRequested = Signal(str)

    def __init__(self, ctx: AppContext, jobs: list[DemoJob] | None = None,
                 people: tuple[list[DemoJob], str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._jobs = demo_jobs() if jobs is None else list(jobs)
        self._people_jobs, self._people_reason = people_demo() if people is None else people
        self._people_wanted = False
        self._handles: list[tuple[DemoJob, JobHandle]] = []
        self._failed: list[tuple[DemoJob, str]] = []  # what a retry builds again ('' stopped)
        self.state = "hidden"
        self.setObjectName("demoBanner")
        self.setStyleSheet(f"QFrame#demoBanner {{ background: {INFO[0]}; border-radius: 4px; }}"
                           f" QFrame#demoBanner QLabel, QFrame#demoBanner QCheckBox "
                           f"{{ color: {INFO[1]}; }}")
        self._build_widgets()
        ctx.registryChanged.connect(self._on_ctx_registryChanged)
        self._set_state("offer" if workspace_is_empty(ctx) else "hidden")

    def _build_widgets(self) -> None:
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.people_check = QCheckBox("Also the people demo:")
        self.people_note = QLabel(  # a check box does not wrap: its text stays short
            f"the offline language model fine-tuned on {PEOPLE_SIZE['people']} fictitious "
            f"people, and once more without {DEMO_PERSON} as the People audit's reference "
            f"(about {PEOPLE_MINUTES} minutes more on a CPU)")
        self.people_note.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.action_button, self.requests_button = QPushButton(), QPushButton("Open Requests")
        self.close_button = QPushButton()
        option = QHBoxLayout()
        option.addWidget(self.people_check)
        option.addWidget(self.people_note, 1)
        column = QVBoxLayout()
        column.addWidget(self.text)
        column.addLayout(option)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 12, 8)
        row.addLayout(column, 1)
        for widget in (self.progress, self.requests_button, self.action_button,
                       self.close_button):
            row.addWidget(widget)
        self.action_button.clicked.connect(self._on_action_button_clicked)
        self.requests_button.clicked.connect(self._on_requests_button_clicked)
        self.close_button.clicked.connect(self._on_close_button_clicked)

    def build(self) -> None:
        """Queue the demo jobs not built yet (they run one after another in the worker)."""
        if self.state == "offer":
            self._people_wanted = self.people_check.isChecked() and bool(self._people_jobs)
        planned = self._jobs + (self._people_jobs if self._people_wanted else [])
        redo = [job for job, _error in self._failed]
        todo = [job for job in planned if job in redo] if redo else planned
        self._failed = []
        self._handles = []
        for job in todo:
            handle = self.ctx.submit_job(job.target, {
                "operator": self.ctx.operator, **job.arguments(self.ctx.workspace.root)})
            handle.progressed.connect(self._on_job_progressed)
            handle.failed.connect(lambda message, _tb, j=job: self._on_job_failed(j, message))
            handle.finished.connect(lambda _status, h=handle: self._on_job_finished(h))
            self._handles.append((job, handle))
        self._set_state("building")

    def _set_state(self, state: str) -> None:
        self.state = state
        text, action, close = self._texts(state)
        self.text.setText(text)
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action))
        self.close_button.setText(close)
        for widget in (self.people_check, self.people_note):
            widget.setVisible(state == "offer" and bool(self._people_jobs))
        self.requests_button.setVisible(state == "done" and self._people_ready())
        self.progress.setVisible(state in ("building", "usable"))
        self.progress.setRange(0, 0)
        self.setVisible(state != "hidden")

    def _texts(self, state: str) -> tuple[str, str, str]:
        first = self._handles[0][0].title if self._handles else ""
        return {
            "offer": ("This workspace is empty. Build the demo: a digits classifier of digits "
                      f"5-9 ('{DEMO_MODEL}') whose every forget is exact, on a backbone "
                      "pretrained on digits 0-4, which stand for public data (about a minute "
                      "on a CPU)"
                      f"{self._rule_part()} built in the background, so that you can "
                      "forget a class right away." + self._people_offer(), "Build the demo",
                      "Not now"),
            "building": (f"Building the demo: {first}…" if first else "", "", "Hide"),
            "usable": (f"The demo model is ready: open Models, select a class of "
                       f"'{DEMO_MODEL}' and press Forget…: it runs at once, while "
                       f"{self._rest()} is still being built in the background (that build "
                       "pauses for it).", "Open Models", "Hide"),
            "done": (f"The demo is ready: open Models, select a class of '{DEMO_MODEL}' and "
                     "press Forget…" + self._people_steps() + self._missing_part(),
                     "Open Models", "Dismiss"),
            "failed": ("The demo could not be built: "
                       + " ".join(error for _job, error in self._failed if error),
                       "Try again", "Dismiss"),
        }.get(state, ("", "", ""))

    def _people_offer(self) -> str:
        if self._people_jobs or not self._people_reason:
            return ""
        return f" (The people demo is not offered: {self._people_reason}.)"

    def _people_ready(self) -> bool:
        return self._people_wanted and not any(job in self._people_jobs
                                               for job, _error in self._failed)

    def _people_steps(self) -> str:
        if not self._people_ready():
            return ""
        return (f" The people demo is ready too: on Requests press New request…, choose "
                f"'{PEOPLE_MODEL}' and the person '{DEMO_PERSON}' and record it; another "
                "operator approves it (four-eyes; Operators… registers them), which builds "
                "and enables the person's forget rule. Then on Audits pick that request and "
                "press Run audit: the People (TOFU / MUSE) tab sets the guarded model beside "
                f"'{PEOPLE_RETAIN}', which never saw {DEMO_PERSON}.")

    def _missing_part(self) -> str:
        return "".join(f" ({_capital(job.part or job.title)} could not be built: {error} "
                       f"{job.retry})" for job, error in self._failed if error)

    def _rest(self) -> str:
        parts = dict.fromkeys(job.part or job.title for job, _handle in self._handles)
        return " and ".join(parts) or "nothing"

    def _rule_part(self) -> str:
        if RULE_JOB in self._jobs:
            return (" and then the language-model forget rule 'harry-potter' (about a quarter "
                    "of an hour on a CPU; the digits model is ready long before)")
        return ""

    def _on_action_button_clicked(self) -> None:
        if self.state in ("offer", "failed"):
            self.build()
        elif self.state in ("usable", "done"):
            self.openScreenRequested.emit("Models")
            self.setVisible(False)  # 'usable': shown again when the rest is built
            if self.state == "done":
                self.state = "hidden"

    def _on_requests_button_clicked(self) -> None:
        self.openScreenRequested.emit("Requests")  # the banner stays: it holds the steps

    def _on_close_button_clicked(self) -> None:
        self.setVisible(False)  # building goes on; the jobs still show in the status bar
        if self.state not in ("building", "usable"):
            self.state = "hidden"

    def _on_ctx_registryChanged(self) -> None:  # noqa: N802
        if self.state == "offer" and not workspace_is_empty(self.ctx):
            self._set_state("hidden")  # a model arrived another way

    def _on_job_progressed(self, record: dict[str, Any]) -> None:
        if not self._handles or self.state == "usable":
            return  # 'usable' keeps its news; the status bar shows the rest's progress
        job = self._handles[0][0]  # the jobs run one at a time, in order
        data = record.get("data") or {}
        left = f" · about {duration_text(data['eta_s'])} left" if "eta_s" in data else ""
        self.text.setText(f"Building the demo: {job.title}: {record.get('message', '')}{left}")
        if record.get("fraction") is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * record["fraction"]))

    def _on_job_failed(self, job: DemoJob, message: str) -> None:
        """Note the failure; the rest of its optional part would fail for the same reason
        (no corpus, no model), so it is stopped and kept for a retry."""
        self._failed.append((job, sentence(message)))
        for other, handle in self._handles:
            if job.part and other.part == job.part and other is not job:
                handle.cancel()
                self._failed.append((other, ""))

    def _on_job_finished(self, handle: JobHandle) -> None:
        self._handles = [(j, h) for j, h in self._handles if h is not handle]
        needed = any(j.required for j, _e in self._failed)
        if not self._handles:  # shown again even if hidden meanwhile: the news is brief
            self._set_state("failed" if needed else "done")
        elif not needed and not any(j.required for j, _h in self._handles):
            self._set_state("usable")  # only optional parts are left: forget right away


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
