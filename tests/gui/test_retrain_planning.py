"""The Requests screen's two clocks and retrain planning (docs/design.md section 18)."""

from __future__ import annotations

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
