"""Four-eyes needs a proven requester: with it on, a request is recorded only by a registered
operator who proves their passphrase, its log entry is signed, and an approval is refused
when the request's requester did not prove who they are."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from storage import auditlog, decisions
from storage import requests as reqs
from storage.errors import RefusedError
from storage.models import AuditLogEntry, ErasureRequest
from storage.operators import AuthenticationError
from storage.settings import set_setting
from storage.workspace import Workspace
from tests import approvals
from tests.approvals import passphrase_of

RECEIVED = "request.received"


@pytest.fixture()
def ws(shop_ws: Workspace) -> Workspace:
    """Four-eyes on (a new workspace); operators alice and bob; the 'shop' model."""
    with shop_ws.sessions.begin() as session:
        for name in ("alice", "bob"):
            approvals.ensure_operator(session, name)
    return shop_ws


def _file(ws: Workspace, operator: str, passphrase: str | None) -> int:
    with ws.sessions.begin() as session:
        return reqs.create_request(session, model_name="shop", classes=["shoe"],
                                   subject="ticket-4711", legal_basis="GDPR Art. 17(1)(b)",
                                   operator=operator, passphrase=passphrase,
                                   subject_key=approvals.key_of(ws)).id


def _state(ws: Workspace) -> tuple[int, int]:
    with ws.sessions() as session:
        return (len(session.scalars(select(ErasureRequest)).all()),
                len(session.scalars(select(AuditLogEntry)).all()))


def _four_eyes(ws: Workspace, on: bool) -> None:
    with ws.sessions.begin() as session:
        set_setting(session, "four_eyes", on, "admin")


def _received_payload(ws: Workspace, rid: int) -> dict:
    with ws.sessions() as session:
        for entry in session.scalars(select(AuditLogEntry).where(
                AuditLogEntry.action == RECEIVED)):
            payload = json.loads(entry.payload)
            if payload["request"] == rid:
                return {"actor": entry.actor, **payload}
    raise AssertionError(f"no {RECEIVED} entry for request {rid}")


@pytest.mark.parametrize("operator,passphrase,message", [
    ("ghost", "ghost passphrase", "operator 'ghost' is not registered"),
    ("bob", passphrase_of("alice"), "wrong passphrase for operator 'bob'"),
    ("bob", None, "operator 'bob' must give their passphrase"),
])
def test_an_unproven_requester_is_refused_and_nothing_is_recorded(
        ws, operator: str, passphrase: str | None, message: str) -> None:
    before = _state(ws)
    with pytest.raises(AuthenticationError, match=f"four-eyes is on.*{message}"):
        _file(ws, operator, passphrase)
    assert _state(ws) == before


def test_a_request_filed_by_alice_cannot_be_approved_by_alice(ws) -> None:
    rid = _file(ws, "alice", passphrase_of("alice"))
    with pytest.raises(RefusedError, match="created by alice"), ws.sessions.begin() as session:
        approvals.approve(session, rid, "alice")
    with ws.sessions.begin() as session:
        assert approvals.approve(session, rid, "bob").approved_by == "bob"


def test_the_signed_request_entry_checks_out(ws) -> None:
    rid = _file(ws, "alice", passphrase_of("alice"))
    payload = _received_payload(ws, rid)
    assert payload["actor"] == "alice" and payload["requester"] == "proven"
    assert payload["signature"]["scheme"] == "hmac-sha256/scrypt-passphrase"
    assert payload["signed"]["requested_by"] == "alice" and "scope" in payload
    with ws.sessions() as session:
        request = session.get(ErasureRequest, rid)
        check = decisions.check(session, request, RECEIVED, passphrase_of("alice"))
        assert check == {"request": rid, "action": RECEIVED, "operator": "alice",
                         "valid": True, "matches_request": True}
        assert decisions.unproven_requester(session, request) is None
        with pytest.raises(AuthenticationError, match="wrong passphrase"):
            decisions.check(session, request, RECEIVED, passphrase_of("bob"))
        assert auditlog.verify(session).valid


@pytest.mark.parametrize("field,value,approver,message", [
    ("legal_basis", "consent", "bob", "was changed after 'alice' signed it"),
    ("requested_by", "carol", "alice", "names 'carol' as requester but was signed by 'alice'"),
])
def test_a_request_edited_after_it_was_signed_is_not_approved(
        ws, field: str, value: str, approver: str, message: str) -> None:
    rid = _file(ws, "alice", passphrase_of("alice"))
    with ws.sessions.begin() as session:  # someone edits the registry behind the log's back
        setattr(session.get(ErasureRequest, rid), field, value)
    with pytest.raises(RefusedError, match=message), ws.sessions.begin() as session:
        approvals.approve(session, rid, approver)
    with ws.sessions() as session:
        assert session.get(ErasureRequest, rid).status == "received"


def test_an_unproven_request_is_approved_only_with_four_eyes_off(ws) -> None:
    _four_eyes(ws, False)
    unproven = _file(ws, "ghost", None)  # four-eyes off: any name, as before
    proven = _file(ws, "alice", passphrase_of("alice"))  # a passphrase given still signs
    assert _received_payload(ws, unproven)["requester"] == "unproven"
    assert "signature" not in _received_payload(ws, unproven)
    assert _received_payload(ws, proven)["requester"] == "proven"
    with pytest.raises(AuthenticationError, match="wrong passphrase"):
        _file(ws, "alice", "not alice's passphrase")
    _four_eyes(ws, True)
    with pytest.raises(RefusedError, match=(
            "four-eyes is on: request 1 was recorded by 'ghost' without proof of who they are"
            r".*reject it and record it again .*turn four-eyes off")), \
            ws.sessions.begin() as session:
        approvals.approve(session, unproven, "bob")
    with ws.sessions.begin() as session:
        approvals.approve(session, proven, "bob")
    _four_eyes(ws, False)
    with ws.sessions.begin() as session:
        assert approvals.approve(session, unproven, "bob").approved_by == "bob"
