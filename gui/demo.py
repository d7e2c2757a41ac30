"""First start: on an empty workspace, offer to build the demo as background jobs, so that a
new operator can forget a class within minutes of ``make run``."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import sentence
from gui.train_widget import duration_text
from storage.queries_gui import model_kinds

DEMO_MODEL = "digits-demo"
DEMO_BACKBONE = "digits-public"
PUBLIC_CLASSES, DEMO_CLASSES = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
# What the banner tells the operator to do while the rest of the demo builds: an
# interactive job (engine.job_classes), so it never waits behind that build.
SUGGESTED_JOB = "engine.forget:forget_job"
INFO = ("#e8f1fb", "#1b4f80")


@dataclass(frozen=True)
class DemoJob:
    """One background job of the demo; it gets the workspace and the operator as well."""

    title: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    required: bool = True  # without it there is no demo; else its failure is only noted


# The demo's jobs, run in this order: a backbone pretrained on digits 0-4 (they stand for
# the public data a backbone comes with: declared non-erasable), the digits classifier of
# 5-9 in the retrain-equivalent mode on it (every forget is exact at once, docs/design.md
# section 17), then (when the engine has the registry job of `guard rule add --demo`) the
# language-model forget rule.
BACKBONE_JOB = DemoJob(f"the backbone '{DEMO_BACKBONE}' (digits 0-4, declared public)",
                       "engine.image_jobs:pretrain_backbone_job",
                       {"name": DEMO_BACKBONE, "dataset": "digits", "classes": PUBLIC_CLASSES})
DIGITS_JOB = DemoJob(f"the digits classifier '{DEMO_MODEL}'",
                     "engine.image_jobs:train_model_job",
                     {"name": DEMO_MODEL, "dataset": "digits", "mode": "independent",
                      "classes": DEMO_CLASSES, "backbone_from": DEMO_BACKBONE})
RULE_JOB = DemoJob("the language-model forget rule 'harry-potter'",
                   "engine.guard.registry_jobs:add_rule_job", {"demo": True}, required=False)


def job_exists(target: str) -> bool:
    """Whether ``target`` names a function of a module of this installation, found by reading
    its file: importing it, or even its package (``engine.guard``), would load torch, which the
    GUI process never does."""
    module, _, name = target.partition(":")
    top, *parts = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level package: its __init__ is not run
    if spec is None or not spec.submodule_search_locations or not parts:
        return False
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    source = base.with_suffix(".py")
    if not source.is_file():
        return False
    text = source.read_text(encoding="utf-8")
    return re.search(rf"^def {re.escape(name)}\(", text, re.MULTILINE) is not None


def demo_jobs() -> list[DemoJob]:
    return [BACKBONE_JOB, DIGITS_JOB] + ([RULE_JOB] if job_exists(RULE_JOB.target) else [])


def workspace_is_empty(ctx: AppContext) -> bool:
    with ctx.workspace.sessions() as session:
        return not model_kinds(session)


class DemoBanner(QFrame):
    """A non-blocking offer above the screens: build the demo, follow it, open Models."""

    openScreenRequested = Signal(str)

    def __init__(self, ctx: AppContext, jobs: list[DemoJob] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._jobs = demo_jobs() if jobs is None else list(jobs)
        self._handles: list[tuple[DemoJob, JobHandle]] = []
        self._failed: list[tuple[DemoJob, str]] = []  # what a retry builds again
        self.state = "hidden"
        self.setObjectName("demoBanner")
        self.setStyleSheet(f"QFrame#demoBanner {{ background: {INFO[0]}; border-radius: 4px; }}"
                           f" QFrame#demoBanner QLabel {{ color: {INFO[1]}; }}")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.action_button = QPushButton()
        self.close_button = QPushButton()
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 12, 8)
        row.addWidget(self.text, 1)
        for widget in (self.progress, self.action_button, self.close_button):
            row.addWidget(widget)
        self.action_button.clicked.connect(self._on_action_button_clicked)
        self.close_button.clicked.connect(self._on_close_button_clicked)
        ctx.registryChanged.connect(self._on_ctx_registryChanged)
        self._set_state("offer" if workspace_is_empty(ctx) else "hidden")

    def build(self) -> None:
        """Queue the demo jobs not built yet (they run one after another in the worker)."""
        todo = [job for job, _error in self._failed] or self._jobs
        self._failed = []
        self._handles = []
        for job in todo:
            handle = self.ctx.submit_job(job.target, {"operator": self.ctx.operator,
                                                      **job.kwargs})
            handle.progressed.connect(self._on_job_progressed)
            handle.failed.connect(lambda message, _tb, j=job: self._on_job_failed(j, message))
            handle.finished.connect(lambda _status, h=handle: self._on_job_finished(h))
            self._handles.append((job, handle))
        self._set_state("building")

    def _set_state(self, state: str) -> None:
        self.state = state
        texts = {
            "offer": ("This workspace is empty. Build the demo: a digits classifier of digits "
                      f"5-9 ('{DEMO_MODEL}') whose every forget is exact, on a backbone "
                      "pretrained on digits 0-4, which stand for public data (about a minute "
                      "on a CPU)"
                      f"{self._rule_part()} built in the background, so that you can "
                      "forget a class right away.", "Build the demo", "Not now"),
            "building": (f"Building the demo: {self._jobs[0].title}…" if self._jobs else "",
                         "", "Hide"),
            "usable": (f"The demo model is ready: open Models, select a class of "
                       f"'{DEMO_MODEL}' and press Forget…: it runs at once, while "
                       f"{self._rest()} is still being built in the background (that build "
                       "pauses for it).", "Open Models", "Hide"),
            "done": (f"The demo is ready: open Models, select a class of '{DEMO_MODEL}' and "
                     "press Forget…" + self._missing_part(), "Open Models", "Dismiss"),
            "failed": ("The demo could not be built: "
                       + " ".join(error for _job, error in self._failed), "Try again",
                       "Dismiss"),
        }
        text, action, close = texts.get(state, ("", "", ""))
        self.text.setText(text)
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action))
        self.close_button.setText(close)
        self.progress.setVisible(state in ("building", "usable"))
        self.progress.setRange(0, 0)
        self.setVisible(state != "hidden")

    def _missing_part(self) -> str:
        return "".join(f" ({job.title[0].upper()}{job.title[1:]} could not be built: "
                       f"{error} Retry it from the Language-model guard screen.)"
                       for job, error in self._failed)

    def _rest(self) -> str:
        return " and ".join(job.title for job, _handle in self._handles) or "nothing"

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
        self._failed.append((job, sentence(message)))

    def _on_job_finished(self, handle: JobHandle) -> None:
        self._handles = [(j, h) for j, h in self._handles if h is not handle]
        needed = any(j.required for j, _e in self._failed)
        if not self._handles:  # shown again even if hidden meanwhile: the news is brief
            self._set_state("failed" if needed else "done")
        elif not needed and not any(j.required for j, _h in self._handles):
            self._set_state("usable")  # only optional parts are left: forget right away
