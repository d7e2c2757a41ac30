"""The Requests screen: the queue, and create / approve / reject through the widgets."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from gui.context import AppContext
from gui.request_dialog import DecisionDialog, RequestDialog
from gui.requests_widget import RequestsWidget
from storage import auditlog, decisions
from storage import requests as reqs
from storage.queries_gui import audit_log_rows
from storage.settings import set_setting
from tests.approvals import passphrase_of


@pytest.fixture()
def screen(qtbot, ctx: AppContext, seeded: dict[str, int]) -> RequestsWidget:  # noqa: ANN001
    widget = RequestsWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture()
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Warning dialogs shown, as (title, text), instead of blocking the test."""
    shown: list[tuple[str, str]] = []

    def warning(_parent: Any, title: str, text: str, *_a: Any) -> QMessageBox.StandardButton:
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", warning)
    return shown


def cell(screen: RequestsWidget, request_id: int, column: str,
         role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
    titles = [screen.model.headerData(c, Qt.Orientation.Horizontal)
              for c in range(screen.model.columnCount())]
    row = screen.model.row_where("id", request_id)
    return screen.model.index(row, titles.index(column)).data(role)


def fill_dialog(monkeypatch: pytest.MonkeyPatch, subject: str, classes: list[str],
                passphrase: str = "") -> list[RequestDialog]:
    """Let 'New request…' fill the dialog and press 'Record request' instead of blocking."""
    shown: list[RequestDialog] = []

    def exec_(dialog: RequestDialog) -> int:
        shown.append(dialog)
        dialog.subject_edit.setText(subject)
        dialog.passphrase_edit.setText(passphrase)
        for name in classes:
            dialog.check_class(name)
        dialog.ok_button.click()
        return dialog.result()

    monkeypatch.setattr(RequestDialog, "exec", exec_)
    return shown


def decide(monkeypatch: pytest.MonkeyPatch, operator: str, passphrase: str | None = None,
           reason: str = "", accept: bool = True) -> list[DecisionDialog]:
    """Let 'Approve…' / 'Reject…' fill the dialog and press its button instead of blocking."""
    shown: list[DecisionDialog] = []

    def exec_(dialog: DecisionDialog) -> int:
        shown.append(dialog)
        dialog.operator_edit.setText(operator)
        dialog.passphrase_edit.setText(passphrase_of(operator) if passphrase is None
                                       else passphrase)
        if dialog.reason_edit is not None:
            dialog.reason_edit.setText(reason)
        if accept:
            dialog.ok_button.click()
        return dialog.result()

    monkeypatch.setattr(DecisionDialog, "exec", exec_)
    return shown


def test_queue_shows_due_dates_overdue_first_and_at_risk(screen: RequestsWidget,
                                                         seeded: dict[str, int]) -> None:
    assert screen.model.record(0)["id"] == seeded["overdue"]
    assert cell(screen, seeded["overdue"], "Deadline") == "Overdue by 3 days"
    assert cell(screen, seeded["at_risk"], "Deadline") == "At risk: 4 days left"
    assert cell(screen, seeded["received"], "Deadline") == "29 days left"
    assert cell(screen, seeded["rejected"], "Deadline") == "Closed (rejected)"
    red = cell(screen, seeded["overdue"], "Scope", Qt.ItemDataRole.BackgroundRole)
    amber = cell(screen, seeded["at_risk"], "Scope", Qt.ItemDataRole.BackgroundRole)
    assert red.color().name() == "#fbe3e1" and amber.color().name() == "#fff3d1"
    assert cell(screen, seeded["received"], "Scope", Qt.ItemDataRole.BackgroundRole) is None
    assert screen.summary.text() == "6 requests · 4 open · 1 overdue · 1 at risk"


def test_create_a_request_through_the_dialog(screen: RequestsWidget, ctx: AppContext,
                                             monkeypatch: pytest.MonkeyPatch, qtbot) -> None:  # noqa: ANN001
    ctx.set_operator("carol")
    shown = fill_dialog(monkeypatch, "max@example.org", ["trouser", "coat"],
                        passphrase_of("carol"))
    qtbot.mouseClick(screen.new_button, Qt.MouseButton.LeftButton)
    assert shown[0].operator_edit.text() == "carol"
    new_id = screen.selected_id()
    assert new_id is not None and screen.model.rowCount() == 7
    assert cell(screen, new_id, "Scope") == "fashion-vit: trouser, coat"
    assert cell(screen, new_id, "Status") == "Received"
    assert cell(screen, new_id, "Requester") == "carol"
    assert cell(screen, new_id, "Deadline") == "30 days left"
    with screen.ctx.workspace.sessions() as session:
        request = reqs.get_request(session, new_id)
        assert decisions.check(session, request, "request.received",
                               passphrase_of("carol"))["valid"]


@pytest.mark.parametrize("operator,passphrase,message", [
    ("dora", "dora's passphrase", "operator 'dora' is not registered"),
    ("carol", "", "operator 'carol' must give their passphrase"),
    ("carol", passphrase_of("bob"), "wrong passphrase for operator 'carol'"),
])
def test_with_four_eyes_an_unproven_requester_records_nothing(
        screen: RequestsWidget, ctx: AppContext, warnings: list,
        monkeypatch: pytest.MonkeyPatch, operator: str, passphrase: str, message: str) -> None:
    ctx.set_operator(operator)
    shown = fill_dialog(monkeypatch, "max@example.org", ["coat"], passphrase)
    screen.new_button.click()
    (title, text), = warnings
    assert title == "Cannot record the request" and message in text
    assert text.startswith("Four-eyes is on, so whoever records a request must prove")
    assert shown[0].result() == 0 and shown[0].passphrase_edit.text() == ""
    assert screen.model.rowCount() == 6


def test_with_four_eyes_off_a_request_is_recorded_unproven(
        screen: RequestsWidget, ctx: AppContext, warnings: list,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ctx.workspace.sessions.begin() as session:
        set_setting(session, "four_eyes", False, "admin")
    ctx.set_operator("dora")
    shown = fill_dialog(monkeypatch, "max@example.org", ["coat"])
    screen.new_button.click()
    assert "Four-eyes is off" in shown[0].findChildren(QLabel)[-1].text()
    new_id = screen.selected_id()
    assert cell(screen, new_id, "Requester") == "dora"
    with ctx.workspace.sessions.begin() as session:
        set_setting(session, "four_eyes", True, "admin")
    decide(monkeypatch, "carol")
    screen.approve_button.click()
    (title, text), = warnings
    assert title == f"Cannot approve request {new_id}"
    assert "was recorded by 'dora' without proof of who they are" in text
    assert cell(screen, new_id, "Status") == "Received"


def test_a_bad_request_shows_why_and_keeps_the_dialog_open(
        screen: RequestsWidget, warnings: list, monkeypatch: pytest.MonkeyPatch) -> None:
    results = []

    def exec_(dialog: RequestDialog) -> int:
        dialog.check_class("coat")
        dialog.operator_edit.setText("carol")
        dialog.passphrase_edit.setText(passphrase_of("carol"))
        dialog.ok_button.click()  # no subject yet: refused, the dialog stays open
        results.append(dialog.result())
        dialog.subject_edit.setText("max@example.org")
        dialog.passphrase_edit.setText(passphrase_of("carol"))  # cleared by the refusal
        dialog.ok_button.click()
        return dialog.result()

    monkeypatch.setattr(RequestDialog, "exec", exec_)
    screen.new_button.click()
    assert warnings == [("Cannot record the request", "The data-subject reference is empty.")]
    assert results == [0] and screen.model.rowCount() == 7


@pytest.mark.usefixtures("registry_backend")  # the GUI on a team's PostgreSQL registry too
def test_approve_and_reject_update_the_table(screen: RequestsWidget, seeded: dict[str, int],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    screen.select(seeded["received"])
    assert screen.approve_button.isEnabled()
    decide(monkeypatch, "carol")
    screen.approve_button.click()
    assert cell(screen, seeded["received"], "Status") == "Approved"
    assert cell(screen, seeded["received"], "Approver") == "carol"
    assert not screen.approve_button.isEnabled() and screen.reject_button.isEnabled()
    decide(monkeypatch, "carol", reason="duplicate of an earlier request")
    screen.select(seeded["overdue"])
    screen.reject_button.click()
    assert cell(screen, seeded["overdue"], "Status") == "Rejected"
    assert "duplicate of an earlier request" in screen.details.text()
    assert screen.model.record(0)["id"] != seeded["overdue"]  # no longer overdue: not first
    with screen.ctx.workspace.sessions() as session:
        actions = [r["action"] for r in audit_log_rows(session)[:2]]
    assert actions == ["request.rejected", "request.approved"]


def test_cancelling_the_reason_rejects_nothing(screen: RequestsWidget, seeded: dict[str, int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    decide(monkeypatch, "carol", reason="duplicate", accept=False)
    screen.select(seeded["received"])
    screen.reject_button.click()
    assert cell(screen, seeded["received"], "Status") == "Received"


def test_refusals_are_readable_messages_not_crashes(screen: RequestsWidget, warnings: list,
                                                    seeded: dict[str, int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with screen.ctx.workspace.sessions.begin() as session:
        set_setting(session, "four_eyes", True, "admin")
    screen.select(seeded["received"])
    decide(monkeypatch, "bob")  # bob created the 'received' request
    screen.approve_button.click()
    decide(monkeypatch, "carol", reason="   ")
    screen.reject_button.click()
    title, text = warnings[0]
    assert title == f"Cannot approve request {seeded['received']}"
    assert "Four-eyes is on: request" in text and text.endswith(".")
    assert warnings[1] == (f"Cannot reject request {seeded['received']}",
                           "A rejection needs a reason.")
    assert cell(screen, seeded["received"], "Status") == "Received"
    with screen.ctx.workspace.sessions() as session:
        assert auditlog.verify(session).valid


@pytest.mark.parametrize("operator,passphrase,message", [
    ("carol", "not carol's passphrase", "Wrong passphrase for operator 'carol'."),
    ("mallory", "mallory's passphrase", "Operator 'mallory' is not registered "
                                        "(see `unprompt operators list`)"),
])
def test_an_unproven_operator_cannot_approve(screen: RequestsWidget, warnings: list,
                                             seeded: dict[str, int],
                                             monkeypatch: pytest.MonkeyPatch,
                                             operator: str, passphrase: str,
                                             message: str) -> None:
    screen.select(seeded["received"])
    shown = decide(monkeypatch, operator, passphrase)
    screen.approve_button.click()
    assert warnings == [(f"Cannot approve request {seeded['received']}", message)]
    assert shown[0].passphrase_edit.text() == "" and shown[0].result() == 0
    assert cell(screen, seeded["received"], "Status") == "Received"


def test_an_executed_request_shows_its_erasure_kind(screen: RequestsWidget,
                                                    seeded: dict[str, int]) -> None:
    """The seeded request was recorded 'exact' on an isolated-mode model, as the code
    before the erasure kinds did: it reads 'isolated' now (docs/design.md section 4.3)."""
    screen.select(seeded["executed"])
    assert "(isolated erasure)" in screen.details.text()
    assert screen.details.toolTip().startswith("isolated erasure: No shared weight learned")
