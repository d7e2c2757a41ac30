"""The Activity screen: the audit log and 'Verify chain'."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import text

from gui.activity_widget import ActivityWidget
from gui.context import AppContext
from gui.table_model import TONES
from tests import approvals


@pytest.fixture()
def screen(qtbot, ctx: AppContext, seeded: dict[str, int]) -> ActivityWidget:  # noqa: ANN001
    widget = ActivityWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_the_log_is_listed_newest_first(screen: ActivityWidget) -> None:
    first, last = screen.model.record(0), screen.model.record(screen.model.rowCount() - 1)
    assert screen.model.rowCount() == 14  # 4 operators added, 6 received, 3 decisions, 1 run
    assert (first["seq"], first["action"], first["actor"]) == (14, "request.executed", "alice")
    assert last["seq"] == 1 and last["action"] == "operator.added"
    payload = screen.model.index(0, 4).data()
    assert payload == "request: 5, erasure_kind: exact"


def test_verify_chain_reports_a_valid_chain(screen: ActivityWidget, qtbot) -> None:  # noqa: ANN001
    assert screen.result_text == ""
    screen.verify_button.click()
    assert screen.result_text.startswith("✔ The chain is valid: 14 entries; head hash ")


def test_verify_chain_names_the_first_broken_entry(screen: ActivityWidget) -> None:
    with screen.ctx.workspace.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    screen.refresh()
    screen.verify_button.click()
    assert screen.result_text == ("✘ The chain is broken at entry 3: "
                                  "entry 3 was edited after it was written.")
    selected = screen.table.selectionModel().selectedRows()
    row = screen.proxy.mapToSource(selected[0]).row()
    assert screen.model.record(row)["seq"] == 3
    brush = screen.model.index(row, 0).data(Qt.ItemDataRole.BackgroundRole)
    assert brush.color().name() == TONES["danger"][0]


def test_filter_narrows_the_entries(screen: ActivityWidget) -> None:
    screen.filter_edit.setText("REJECTED")
    assert screen.proxy.rowCount() == 1
    screen.filter_edit.clear()
    assert screen.proxy.rowCount() == 14


def test_new_entries_appear_when_the_registry_changes(screen: ActivityWidget,
                                                      seeded: dict[str, int]) -> None:
    with screen.ctx.workspace.sessions.begin() as session:
        approvals.approve(session, seeded["received"], "carol")
    screen.ctx.registryChanged.emit()
    assert screen.model.record(0)["action"] == "request.approved"


def test_sign_checkpoint_then_verify_shows_it(screen: ActivityWidget,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPROMPT_KEY_PASSPHRASE", "pass phrase")
    head = _entries(screen) + 1  # the signing key's generation is logged first
    screen.checkpoint_button.click()
    assert screen.result_text.startswith(f"✔ Signed checkpoint checkpoint-{head:08d}-")
    assert screen.model.record(0)["action"] == "log.checkpoint"
    screen.verify_button.click()
    assert f"1 signed checkpoint in the chain; latest checkpoint: entry {head}" \
        in screen.result_text


def test_verify_names_a_cut_off_tail(screen: ActivityWidget,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting the newest entries leaves a consistent chain; the checkpoint names it."""
    monkeypatch.setenv("UNPROMPT_KEY_PASSPHRASE", "pass phrase")
    kept = _entries(screen)
    screen.checkpoint_button.click()
    with screen.ctx.workspace.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM audit_log WHERE seq > {kept}"))
    screen.refresh()
    screen.verify_button.click()
    lines = screen.result_text.splitlines()
    assert lines[0] == (f"✘ The chain holds ({kept} entries) but heads anchored outside the "
                        "log are gone:")
    assert any(f"entry {kept + 1} is no longer in the log" in line for line in lines[1:])


def _entries(screen: ActivityWidget) -> int:
    with screen.ctx.workspace.engine.begin() as connection:
        return connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
