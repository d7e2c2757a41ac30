"""The erasure-request lifecycle: hashing, due dates, four-eyes, refusals, audit log."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import text

from storage import auditlog
from storage import requests as reqs
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ErasureRequest, utcnow
from storage.settings import set_setting
from storage.workspace import Workspace
from tests import approvals


@pytest.fixture()
def ws(shop_ws: Workspace) -> Workspace:
    return shop_ws


def _new(ws: Workspace, operator: str = "alice", **kw) -> int:
    args = {"model_name": "shop", "classes": ["shoe"], "subject": "jane@example.org",
            "legal_basis": "GDPR Art. 17(1)(b)", "operator": operator, **kw}
    with ws.sessions.begin() as session:
        return approvals.create_request(session, subject_key=approvals.key_of(ws), **args).id


def test_subject_is_stored_only_as_a_keyed_hash(ws: Workspace) -> None:
    rid = _new(ws)
    same = _new(ws, subject=" jane@example.org")
    other = _new(ws, subject="joe@example.org")
    with ws.sessions() as session:
        a, b, c = (session.get(ErasureRequest, i) for i in (rid, same, other))
        assert "jane" not in a.subject_hash and a.subject_scheme == "hmac-sha256"
        assert a.subject_hash == b.subject_hash != c.subject_hash  # duplicates can be found
        assert a.subject_salt == ""
        assert reqs.requests_for_subject(session, "jane@example.org",
                                         approvals.key_of(ws)) == [rid, same]
        assert a.due_at - a.received_at == dt.timedelta(days=30)
        assert a.scope["classes"] == [{"index": 1, "name": "shoe"}]


def test_class_by_index_and_unknown_class(ws: Workspace) -> None:
    rid = _new(ws, classes=["2"])
    with ws.sessions() as session:
        assert session.get(ErasureRequest, rid).scope["classes"][0]["name"] == "bag"
    with pytest.raises(NotFoundError, match="no class 'hat'"):
        _new(ws, classes=["hat"])


@pytest.mark.parametrize("field,value,message", [
    ("subject", " ", "subject"), ("legal_basis", "", "legal basis"),
    ("model_name", "nope", "no model"), ("classes", [], "either classes"),
])
def test_bad_requests_are_refused(ws: Workspace, field: str, value, message: str) -> None:
    with pytest.raises(UnpromptError, match=message):
        _new(ws, **{field: value})


def test_approve_then_reject_is_refused(ws: Workspace) -> None:
    rid = _new(ws)
    with ws.sessions.begin() as session:
        approvals.approve(session, rid, "bob")
    with ws.sessions.begin() as session:
        approvals.reject(session, rid, "bob", "duplicate")  # approved: still rejectable
    with pytest.raises(RefusedError, match="is rejected"), ws.sessions.begin() as session:
        approvals.approve(session, rid, "bob")


def test_an_approval_that_waited_for_another_is_refused(ws: Workspace) -> None:
    """No lost update: while one approval is uncommitted, a second one (another thread, its
    own connection) waits for it, then reads the request as approved and is refused."""
    rid = _new(ws)
    with ws.sessions.begin() as session:
        approvals.ensure_operator(session, "bob")
        approvals.ensure_operator(session, "carol")
    outcome: list[BaseException | None] = []
    second = threading.Thread(target=_approve_into, args=(ws, rid, "carol", outcome))
    with ws.sessions.begin() as session:
        approvals.approve(session, rid, "bob")
        second.start()
        _until_a_writer_waits(ws)
    second.join(timeout=60)
    assert isinstance(outcome[0], RefusedError) and "is approved" in str(outcome[0])
    with ws.sessions() as session:
        request = session.get(ErasureRequest, rid)
        assert request.approved_by == "bob"
        approved = auditlog.entries_of(session, ("request.approved",))
        assert [payload["request"] for _entry, payload in approved] == [rid]


def _approve_into(ws: Workspace, rid: int, operator: str, outcome: list) -> None:
    try:
        with ws.sessions.begin() as session:
            approvals.approve(session, rid, operator)
        outcome.append(None)
    except BaseException as exc:  # noqa: BLE001 - the test reads it
        outcome.append(exc)


def _until_a_writer_waits(ws: Workspace) -> None:
    """On PostgreSQL, until the other writer is seen queued for the lock (on SQLite it
    queues on the file's lock, which cannot be observed: it may come after the commit)."""
    if ws.engine.dialect.name != "postgresql":
        return
    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
    for _ in range(6000):
        with ws.engine.connect() as connection:
            if connection.execute(waiting).scalar():
                return
        time.sleep(0.01)
    raise AssertionError("the second approval never queued for the write lock")


def test_four_eyes_needs_a_second_operator(ws: Workspace) -> None:
    with ws.sessions.begin() as session:
        set_setting(session, "four_eyes", True, "admin")
    rid = _new(ws, operator="alice")
    with pytest.raises(RefusedError, match="four-eyes"), ws.sessions.begin() as session:
        approvals.approve(session, rid, "alice")
    with ws.sessions.begin() as session:
        assert approvals.approve(session, rid, "bob").approved_by == "bob"


def test_list_puts_overdue_first(ws: Workspace) -> None:
    recent = _new(ws)
    old = _new(ws, received_at=utcnow() - dt.timedelta(days=40))
    with ws.sessions() as session:
        rows = reqs.list_requests(session)
    assert [r["id"] for r in rows] == [old, recent]
    assert rows[0]["overdue"] and not rows[1]["overdue"]


def test_every_transition_is_logged(ws: Workspace) -> None:
    rid = _new(ws)
    with ws.sessions.begin() as session:
        approvals.approve(session, rid, "bob")
    with ws.sessions() as session:
        report = auditlog.verify(session)
        actions = [e.action for e in session.query(auditlog.AuditLogEntry)
                   if e.action.startswith("request.")]
    assert report.valid and actions == ["request.received", "request.approved"]


def test_reject_needs_a_reason(ws: Workspace) -> None:
    rid = _new(ws)
    with pytest.raises(UnpromptError, match="reason"), ws.sessions.begin() as session:
        approvals.reject(session, rid, "bob", "  ")
