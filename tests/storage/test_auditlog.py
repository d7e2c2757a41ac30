"""The hash chain names the first edited, deleted or reordered entry."""

from __future__ import annotations

import threading

from storage import auditlog
from storage.workspace import Workspace
from tests import raw_registry


def _write(workspace: Workspace, count: int) -> None:
    for i in range(count):
        with workspace.sessions.begin() as session:
            auditlog.append(session, "alice", "test.event", {"i": i, "note": "é"})


def _verify(workspace: Workspace) -> auditlog.ChainReport:
    with workspace.sessions() as session:
        return auditlog.verify(session)


def _sql(workspace: Workspace, statement: str) -> None:
    raw_registry.execute(workspace.root, statement)


def test_intact_chain_verifies(workspace: Workspace) -> None:
    _write(workspace, 5)
    report = _verify(workspace)
    assert report.valid and report.entries == 5 and report.first_bad is None


def test_edited_payload_is_named(workspace: Workspace) -> None:
    _write(workspace, 5)
    _sql(workspace, "UPDATE audit_log SET payload = replace(payload, '2', '7') WHERE seq = 3")
    report = _verify(workspace)
    assert not report.valid and report.first_bad == 3 and "edited" in report.reason


def test_edited_actor_is_named(workspace: Workspace) -> None:
    _write(workspace, 4)
    _sql(workspace, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert _verify(workspace).first_bad == 2


def test_deleted_entry_is_named(workspace: Workspace) -> None:
    _write(workspace, 5)
    _sql(workspace, "DELETE FROM audit_log WHERE seq = 4")
    report = _verify(workspace)
    assert not report.valid and report.first_bad == 5 and "missing" in report.reason


def test_reordered_entries_are_named(workspace: Workspace) -> None:
    _write(workspace, 5)
    _sql(workspace, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    _sql(workspace, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(workspace, "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    report = _verify(workspace)
    assert not report.valid and report.first_bad == 2


def test_two_threads_writing_at_once_lose_nothing(workspace: Workspace) -> None:
    threads = [threading.Thread(target=_write, args=(workspace, 25)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = _verify(workspace)
    assert report.valid and report.entries == 50
