"""The Requests screen's two clocks and retrain planning (docs/design.md section 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.context import AppContext
from gui.requests_widget import RequestsWidget
from storage import requests as reqs
from storage.models import ModelVersion
from storage.registry import get_model
from storage.workspace import Workspace
from tests import approvals
from tests.gui.demo_data import add_models, new_request
from tests.gui.test_requests_widget import cell

DAY_S = 86400.0


def executed_full(ws: Workspace, days_ago: float, training_s: float) -> int:
    """'fashion-vit' as a `full` model trained in ``training_s`` seconds, with one request
    executed by prompt deletion (approximate: suppressed, waiting for a retrain)."""
    add_models(ws)
    rid = new_request(ws, days_ago=days_ago, classes=["coat"])
    with ws.sessions.begin() as session:
        model = get_model(session, "fashion-vit")
        model.training_mode = "full"
        session.add(ModelVersion(model_id=model.id, number=1, erasure_kind="approximate",
                                 class_artifacts={str(i): f"{i:064x}" for i in range(5)},
                                 metrics={"seconds": training_s}))
        next(c for c in model.classes if c.display_name == "coat").status = "forgotten"
        request = approvals.approve(session, rid, "carol")
        reqs.mark_executed(session, request, "alice", "approximate", {"version": 2})
    return rid


def screen_of(qtbot, ctx: AppContext) -> RequestsWidget:  # noqa: ANN001
    widget = RequestsWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_both_clocks_and_the_estimate_are_shown(qtbot, ctx: AppContext,  # noqa: ANN001
                                                workspace: Workspace) -> None:
    rid = executed_full(workspace, days_ago=3, training_s=600.0)
    screen = screen_of(qtbot, ctx)
    assert cell(screen, rid, "Suppressed") and cell(screen, rid, "Exact") == "waiting (retrain)"
    assert cell(screen, rid, "Deadline") == "Suppressed; exact due in 27 days"
    text = screen.plan_label.text()
    assert "fashion-vit: 1 request waiting for a retrain" in text
    assert "estimated retrain 8 min" in text and "WARNING" not in text  # 600 s * 4/5 classes
    screen.select(rid)
    assert screen.retrain_button.isEnabled()
    assert "not exact yet: waits for a retrain of its model" in screen.details.text()


def test_a_retrain_that_would_finish_after_the_due_date_is_a_warning(
        qtbot, ctx: AppContext, workspace: Workspace) -> None:  # noqa: ANN001
    executed_full(workspace, days_ago=29.5, training_s=2 * DAY_S)
    screen = screen_of(qtbot, ctx)
    assert "WARNING, started now it would finish after the earliest due date" in \
        screen.plan_label.text()


def test_the_retrain_button_submits_the_models_retrain(
        qtbot, ctx: AppContext, workspace: Workspace,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    rid = executed_full(workspace, days_ago=3, training_s=60.0)
    other = new_request(workspace, days_ago=1, classes=["dress"])
    started: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *_a: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr("gui.requests_widget.start_retrain",
                        lambda _ctx, _parent, model, requests: started.append((model,
                                                                               requests)))
    screen = screen_of(qtbot, ctx)
    screen.select(other)  # received, nothing to retrain for
    assert not screen.retrain_button.isEnabled()
    screen.select(rid)
    screen.retrain_button.click()
    assert started == [("fashion-vit", [rid])]


def test_no_plan_without_a_waiting_request(qtbot, ctx: AppContext,  # noqa: ANN001
                                           seeded: dict[str, Any]) -> None:
    screen = screen_of(qtbot, ctx)  # the demo's executed request is exact
    assert not screen.plan_label.isVisible()
    assert cell(screen, seeded["executed"], "Exact")


def held_retrain(ws: Workspace, rid: int) -> int:
    """A stored retrain reference of 'fashion-vit' held for accuracy (as engine.retrain's
    ``_held`` leaves it); returns its run id."""
    from storage import retrain as rt
    from storage.models import AuditRun

    with ws.sessions.begin() as session:
        version = get_model(session, "fashion-vit").versions[-1]
        run = AuditRun(version_id=version.id, kind="reference", config={"retained": []},
                       metrics={"status": "stored", "shared_artifact": "",
                                "class_artifacts": {}})
        session.add(run)
        session.flush()
        rt.hold(session, run, "carol", {"model": "fashion-vit", "from_version": 1,
                                        "margin": 0.02, "retained_live": 0.801,
                                        "retained_retrain": 0.712})
        approvals.ensure_operator(session, "bob")
        return run.id


def decide_in_dialog(monkeypatch: pytest.MonkeyPatch, reason: str, accept: bool,
                     tries: list[str]) -> None:
    """Run the held-retrain dialog as an operator would: type, click Accept or Reject."""
    from gui.retrain_decision_dialog import RetrainDecisionDialog

    def exec_(dialog: RetrainDecisionDialog) -> int:
        tries.append(dialog.figures.text())
        dialog.operator_edit.setText("bob")
        dialog.passphrase_edit.setText(approvals.passphrase_of("bob"))
        dialog.reason_edit.setText("")
        (dialog.accept_button if accept else dialog.reject_button).click()  # refused
        tries.append(str(dialog.result()))
        dialog.passphrase_edit.setText(approvals.passphrase_of("bob"))
        dialog.reason_edit.setText(reason)
        (dialog.accept_button if accept else dialog.reject_button).click()
        return dialog.result()

    monkeypatch.setattr(RetrainDecisionDialog, "exec", exec_)


def test_a_held_retrain_is_shown_and_rejected_with_a_signed_reason(
        qtbot, ctx: AppContext, workspace: Workspace,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch, warnings_shown: list) -> None:
    from storage.models import AuditLogEntry, AuditRun

    rid = executed_full(workspace, days_ago=3, training_s=60.0)
    run_id = held_retrain(workspace, rid)
    screen = screen_of(qtbot, ctx)
    assert ("fashion-vit: retrain held, retained-class accuracy 71.2% retrained against "
            "80.1% live (v1), more than the 2.0% margin below it") in screen.plan_label.text()
    screen.select(rid)
    assert screen.held_button.isEnabled() and not screen.retrain_button.isEnabled()
    tries: list[str] = []
    decide_in_dialog(monkeypatch, "accuracy loss too high for production", False, tries)
    screen.held_button.click()
    assert "Live v1: 80.1% · retrained: 71.2% · 8.9% below, margin 2.0%" in tries[0]
    assert warnings_shown == [("Cannot reject the held retrain",
                               "A decision on a held retrain needs a reason.")]
    assert tries[1] == "0"  # the dialog stayed open after the refusal
    with workspace.sessions() as session:
        entry = session.query(AuditLogEntry).filter_by(
            action="model.retrain_rejected").one()
        assert entry.actor == "bob" and json.loads(entry.payload)["signed"]["reason"] == \
            "accuracy loss too high for production"
        assert session.get(AuditRun, run_id).metrics["retrain"]["status"] == "rejected"
    assert not screen.held_button.isEnabled() and "retrain held" not in \
        screen.plan_label.text()


def test_an_accepted_held_retrain_is_submitted_again_to_promote(
        qtbot, ctx: AppContext, workspace: Workspace,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch, warnings_shown: list) -> None:
    from storage.models import AuditLogEntry

    rid = executed_full(workspace, days_ago=3, training_s=60.0)
    held_retrain(workspace, rid)
    started: list[str] = []
    monkeypatch.setattr("gui.retrain_action.start_retrain",
                        lambda _ctx, _parent, model, requests=None: started.append(model))
    decide_in_dialog(monkeypatch, "the DPO accepts the loss", True, [])
    screen = screen_of(qtbot, ctx)
    screen.select(rid)
    screen.held_button.click()
    assert started == ["fashion-vit"]
    with workspace.sessions() as session:
        entry = session.query(AuditLogEntry).filter_by(action="model.retrain_accepted").one()
        assert json.loads(entry.payload)["signed"]["margin"] == 0.02
