"""Executing an approved request about a person of a fine-tuned language model from the
Requests screen (docs/design.md section 14): as `request approve` does on the CLI, the
approval submits ``forget_subject_job`` (build, store and enable the person's forget rule,
mark the request executed) as a long job, with progress and cancel on the Jobs screen.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from gui.bridge import JobHandle
from gui.context import AppContext
from gui.errors import show_error
from storage.requests import get_request

# engine.guard.subject_jobs.SUBJECT_JOBS["lm.forget"], named here without importing the
# engine's language-model code into the GUI process (the worker runs any module:function)
FORGET_SUBJECT_JOB = "engine.guard.subject_jobs:forget_subject_job"


def is_subject_request(ctx: AppContext, request_id: int) -> bool:
    with ctx.workspace.sessions() as session:
        return "subject_records" in get_request(session, request_id).scope


def start_forget_subject(ctx: AppContext, parent: QWidget, request_id: int) -> JobHandle:
    """Submit the person's forget rule build; its outcome is reported in a message box."""
    handle = ctx.submit_job(FORGET_SUBJECT_JOB, {"request": request_id,
                                                 "operator": ctx.operator}, kind="lm.forget")
    handle.succeeded.connect(lambda result: _on_succeeded(parent, result))
    handle.failed.connect(lambda message, _tb: show_error(
        parent, f"Request {request_id}: the forget rule was not built", message))
    return handle


def _on_succeeded(parent: QWidget, rule: dict[str, Any]) -> None:
    cal = rule.get("calibration") or {}
    QMessageBox.information(parent, "Request executed", (
        f"Request {rule['request']} executed: forget rule {rule['name']} of {rule['model']} "
        f"is enabled (held-out TPR {cal.get('tpr_held_out_phrasings', 0):.1%}, FPR on unseen "
        f"people {cal.get('fpr_test_people', 0):.1%}). The request is suppressed; a retrain "
        "without the person's records makes it exact."))
