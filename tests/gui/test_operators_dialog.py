"""The Operators dialog: bootstrap the first operator, add later ones with the acting
operator's proof, refusals that write nothing; New request on an empty four-eyes workspace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.context import AppContext
from gui.operators_dialog import BOOTSTRAP_HINT, OperatorsDialog
from gui.request_dialog import RequestDialog
from gui.requests_widget import RequestsWidget
from storage import operators
from storage.queries_gui import audit_log_rows
from storage.workspace import Workspace
from tests.approvals import ensure_operator, passphrase_of


@pytest.fixture()
def open_dialog(qtbot, ctx: AppContext):  # noqa: ANN001, ANN201
    """A factory: the Operators dialog over the workspace as it is now, shown."""
    def make() -> OperatorsDialog:
        dialog = OperatorsDialog(ctx)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog
    return make


def registered(ws: Workspace) -> list[str]:
    with ws.sessions() as session:
        return [o["name"] for o in operators.list_operators(session)]


def log_size(ws: Workspace) -> int:
    with ws.sessions() as session:
        return len(audit_log_rows(session))


def fill(dialog: OperatorsDialog, name: str, passphrase: str, repeat: str | None = None,
         actor: str | None = None, actor_passphrase: str = "") -> None:
    """Type into the 'Add operator' form and press its button."""
    dialog.name_edit.setText(name)
    dialog.passphrase_edit.setText(passphrase)
    dialog.repeat_edit.setText(passphrase if repeat is None else repeat)
    if actor is not None:
        dialog.actor_edit.setText(actor)
    dialog.actor_passphrase_edit.setText(actor_passphrase)
    dialog.add_button.click()


def cleared(dialog: OperatorsDialog) -> bool:
    return all(edit.text() == "" for edit in (dialog.passphrase_edit, dialog.repeat_edit,
                                               dialog.actor_passphrase_edit))


def test_the_first_operator_bootstraps_without_proof(open_dialog, ctx: AppContext) -> None:  # noqa: ANN001
    ctx.set_operator("alice")
    dialog = open_dialog()
    assert dialog.bootstrap and dialog.hint.text() == BOOTSTRAP_HINT
    assert not dialog.actor_passphrase_edit.isVisible()
    assert dialog.add_button.text() == "Add the first operator"
    added: list[str] = []
    dialog.operatorAdded.connect(added.append)
    fill(dialog, " alice ", passphrase_of("alice"))
    assert added == ["alice"] and registered(ctx.workspace) == ["alice"]
    assert dialog.model.record(0)["created_by"] == "alice" and cleared(dialog)
    assert dialog.name_edit.text() == "" and dialog.isVisible()
    assert dialog.actor_passphrase_edit.isVisible() and dialog.actor_edit.text() == "alice"
    with ctx.workspace.sessions() as session:
        entry = audit_log_rows(session)[0]
        operators.authenticate(session, "alice", passphrase_of("alice"))
    assert entry["action"] == "operator.added" and json.loads(entry["payload"])["bootstrap"] is True


def test_a_second_operator_needs_the_acting_operators_passphrase(
        open_dialog, ctx: AppContext, warnings_shown: list) -> None:  # noqa: ANN001
    with ctx.workspace.sessions.begin() as session:
        ensure_operator(session, "carol")
    ctx.set_operator("carol")
    dialog = open_dialog()
    assert not dialog.bootstrap and dialog.actor_edit.text() == "carol"
    assert dialog.model.rowCount() == 2  # admin bootstrapped, carol added by admin
    fill(dialog, "dora", passphrase_of("dora"), actor_passphrase=passphrase_of("carol"))
    assert warnings_shown == [] and registered(ctx.workspace) == ["admin", "carol", "dora"]
    with ctx.workspace.sessions() as session:
        operators.authenticate(session, "dora", passphrase_of("dora"))
        entry = audit_log_rows(session)[0]
    assert entry["actor"] == "carol" and json.loads(entry["payload"]) == {
        "operator": "dora", "kdf": "scrypt", "bootstrap": False}
    assert dialog.model.row_where("name", "dora") >= 0


@pytest.mark.parametrize("kwargs,message", [
    ({"actor": "carol", "actor_passphrase": "not carol's passphrase"},
     "Wrong passphrase for operator 'carol'."),
    ({"actor": "carol", "actor_passphrase": ""}, "Operator 'carol' must give their passphrase"),
    ({"actor": "mallory", "actor_passphrase": passphrase_of("mallory")},
     "Operator 'mallory' is not registered"),
    ({"repeat": "dora passphrasE", "actor_passphrase": passphrase_of("carol")},
     "The two new passphrases differ; type the same one twice."),
    ({"passphrase": "short", "actor_passphrase": passphrase_of("carol")},
     "The passphrase of 'dora' is too short (at least 8 characters)"),
    ({"name": "admin", "actor_passphrase": passphrase_of("carol")},
     "Operator 'admin' is already registered."),
])
def test_a_refused_addition_writes_nothing_and_keeps_the_dialog_open(
        open_dialog, ctx: AppContext, warnings_shown: list,  # noqa: ANN001
        kwargs: dict[str, Any], message: str) -> None:
    with ctx.workspace.sessions.begin() as session:
        ensure_operator(session, "carol")
    ctx.set_operator("carol")
    before = log_size(ctx.workspace)
    dialog = open_dialog()
    fill(dialog, **{"name": "dora", "passphrase": passphrase_of("dora"), **kwargs})
    (title, text), = warnings_shown
    assert title == "Cannot add the operator" and text.startswith(message)
    assert registered(ctx.workspace) == ["admin", "carol"]
    assert log_size(ctx.workspace) == before and dialog.model.rowCount() == 2
    assert cleared(dialog) and dialog.isVisible() and dialog.name_edit.text() == kwargs.get(
        "name", "dora")


def test_a_mismatched_bootstrap_passphrase_registers_nobody(
        open_dialog, ctx: AppContext, warnings_shown: list) -> None:  # noqa: ANN001
    dialog = open_dialog()
    fill(dialog, "alice", passphrase_of("alice"), repeat=passphrase_of("alicia"))
    assert warnings_shown == [("Cannot add the operator",
                               "The two new passphrases differ; type the same one twice.")]
    assert registered(ctx.workspace) == [] and log_size(ctx.workspace) == 0
    assert dialog.bootstrap and cleared(dialog)


@pytest.fixture()
def empty_screen(qtbot, ctx: AppContext) -> RequestsWidget:  # noqa: ANN001
    widget = RequestsWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def answer_question(monkeypatch: pytest.MonkeyPatch,
                    answer: QMessageBox.StandardButton) -> list[tuple[str, str]]:
    asked: list[tuple[str, str]] = []

    def question(_parent: Any, title: str, text: str, *_a: Any) -> QMessageBox.StandardButton:
        asked.append((title, text))
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def record_exec(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[Any]:
    """Dialogs of ``cls`` that were opened (closed at once instead of blocking)."""
    opened: list[Any] = []

    def exec_(dialog: Any) -> int:
        opened.append(dialog)
        return 0

    monkeypatch.setattr(cls, "exec", exec_)
    return opened


@pytest.mark.parametrize("answer,opens", [(QMessageBox.StandardButton.Yes, 1),
                                          (QMessageBox.StandardButton.Cancel, 0)],
                         ids=["yes", "cancel"])
def test_new_request_on_an_empty_four_eyes_workspace_points_to_operators(
        empty_screen: RequestsWidget, monkeypatch: pytest.MonkeyPatch,
        answer: QMessageBox.StandardButton, opens: int) -> None:
    asked = answer_question(monkeypatch, answer)
    requests = record_exec(monkeypatch, RequestDialog)
    operator_dialogs = record_exec(monkeypatch, OperatorsDialog)
    empty_screen.new_button.click()
    (title, text), = asked
    assert title == "Add the first operator" and "no operator is registered" in text
    assert requests == [] and len(operator_dialogs) == opens
    if opens:
        assert operator_dialogs[0].bootstrap


def test_new_request_opens_the_request_dialog_once_an_operator_exists(
        empty_screen: RequestsWidget, ctx: AppContext,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ctx.workspace.sessions.begin() as session:
        ensure_operator(session, "carol")
    asked = answer_question(monkeypatch, QMessageBox.StandardButton.Yes)
    requests = record_exec(monkeypatch, RequestDialog)
    empty_screen.new_button.click()
    assert asked == [] and len(requests) == 1


def test_the_operators_button_opens_the_dialog(empty_screen: RequestsWidget,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    opened = record_exec(monkeypatch, OperatorsDialog)
    empty_screen.operators_button.click()
    assert len(opened) == 1 and opened[0].parent() is empty_screen
