"""The erasure-request lifecycle: hashing, due dates, four-eyes, refusals, audit log."""

from __future__ import annotations

import datetime as dt

import pytest

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
