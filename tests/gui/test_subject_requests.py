"""Requests screen: a request about a person of a fine-tuned language model (docs/design.md
section 14), with the CLI's refusals, and its approval submitting the person's forget rule
build; the retrain follow-up of such a model is planned beside the image models' (18)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.context import AppContext
from gui.request_dialog import RequestDialog
from gui.requests_widget import RequestsWidget
from storage import finetunes
from storage import requests as reqs
from storage.workspace import Workspace
from tests import approvals
from tests.gui.test_requests_widget import cell, decide

PEOPLE = {"Ada Lindqvist": "a" * 64, "Bruno Castellane": "b" * 64}


@pytest.fixture()
def tuned(workspace: Workspace) -> Workspace:
    """'crm' as a fine-tuned model of two people (registry rows only: no weights needed
    to record a request) and the operators the dialogs use."""
    with workspace.sessions.begin() as session:
        finetunes.record_finetune(
            session, name="crm", folder="/nowhere/v1", operator="ann",
            corpus={"format": "unprompt.people/1", "records": 4, "people": 2},
            subjects={p: {"records": 2, "artifact": sha} for p, sha in PEOPLE.items()},
            details={"seconds": 120.0, "records": 4})
        for name in ("carol", "bob"):
            approvals.ensure_operator(session, name)
    return workspace


@pytest.fixture()
def screen(qtbot, ctx: AppContext, tuned: Workspace) -> RequestsWidget:  # noqa: ANN001
    ctx.set_operator("carol")
    widget = RequestsWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def ask_for(monkeypatch: pytest.MonkeyPatch, *names: str) -> list[Any]:
    """Fill 'New request…' for model 'crm' with each name in turn (the dialog stays open
    after a refusal); records what the person box offered."""
    seen: list[Any] = []

    def exec_(dialog: RequestDialog) -> int:
        dialog.model_box.setCurrentIndex(dialog.model_box.findData("crm"))
        seen.append([dialog.person_box.itemText(i) for i in range(dialog.person_box.count())])
        seen.append(dialog.scope_label.text())
        for name in names:
            dialog.person_box.setEditText(name)
            dialog.passphrase_edit.setText(approvals.passphrase_of("carol"))
            dialog.ok_button.click()
            seen.append(dialog.result())
        return dialog.result()

    monkeypatch.setattr(RequestDialog, "exec", exec_)
    return seen


def test_a_request_names_a_person_of_the_model_with_the_clis_refusals(
        screen: RequestsWidget, monkeypatch: pytest.MonkeyPatch,
        warnings_shown: list) -> None:
    seen = ask_for(monkeypatch, "Ada Lindqvst", "  ada LINDQVIST ")
    screen.new_button.click()
    assert seen[:2] == [sorted(PEOPLE), "Person"] and seen[2:] == [0, 1]
    assert warnings_shown == [("Cannot record the request",
                               "No records of 'Ada Lindqvst' went into 'crm'; did you mean "
                               "'Ada Lindqvist'?")]
    rid = screen.selected_id()
    assert cell(screen, rid, "Scope") == f"crm: rule {finetunes.subject_rule_name('Ada Lindqvist')}"
    with screen.ctx.workspace.sessions() as session:
        scope = reqs.get_request(session, rid).scope
    assert scope["subject_records"] == PEOPLE["Ada Lindqvist"] and "Ada" not in str(scope)
    warnings_shown.clear()
    ask_for(monkeypatch, "Ada Lindqvist")
    screen.new_button.click()
    assert warnings_shown == [("Cannot record the request",
                               f"Request {rid} (received) already covers this person's "
                               "records in 'crm'; this one is a duplicate.")]


def test_approving_a_persons_request_builds_their_rule_in_the_worker(
        screen: RequestsWidget, monkeypatch: pytest.MonkeyPatch) -> None:
    from gui.subject_action import FORGET_SUBJECT_JOB  # == SUBJECT_JOBS["lm.forget"]

    ask_for(monkeypatch, "Bruno Castellane")
    screen.new_button.click()
    rid = screen.selected_id()
    submitted: list[tuple[str, dict]] = []
    monkeypatch.setattr(screen.ctx, "submit_job", lambda target, kwargs, **_k: (
        submitted.append((target, kwargs)) or _Handle()))
    decide(monkeypatch, "bob")
    screen.approve_button.click()
    assert cell(screen, rid, "Status") == "Approved"
    assert submitted == [(FORGET_SUBJECT_JOB, {"request": rid, "operator": "carol"})]


class _Handle:
    """What ``submit_job`` returns, as far as the screen uses it."""

    class _Signal:
        def connect(self, _slot: Any) -> None:
            pass

    succeeded = failed = _Signal()


def test_a_suppressed_persons_request_waits_for_the_models_retrain(
        screen: RequestsWidget, tuned: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with tuned.sessions.begin() as session:
        request = approvals.create_request(session, operator="carol", model_name="crm",
                                           subject="Ada Lindqvist", legal_basis="GDPR",
                                           subject_key=approvals.key_of(tuned))
        approvals.approve(session, request.id, "bob")
        reqs.mark_executed(session, request, "bob", "suppressed", {})
        rid = request.id
    started: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *_a: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr("gui.requests_widget.start_retrain",
                        lambda _c, _p, model, requests: started.append((model, requests)))
    screen.refresh()
    assert cell(screen, rid, "Exact") == "waiting (retrain)"
    assert "crm: 1 request waiting for a retrain" in screen.plan_label.text()
    assert "estimated retrain 60 s" in screen.plan_label.text()  # 120 s x 2 of 4 records
    screen.select(rid)
    screen.retrain_button.click()
    assert started == [("crm", [rid])]
