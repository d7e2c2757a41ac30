"""Operators bound to passphrases, signed approvals and rejections, four-eyes by default,
and the keyed subject hash (the database alone confirms no guessed reference)."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
from alembic import command
from sqlalchemy import select, text

from storage import auditlog, decisions, operators
from storage import requests as reqs
from storage.db import alembic_config, make_engine
from storage.errors import IntegrityError, RefusedError
from storage.models import AuditLogEntry, ErasureRequest, Operator
from storage.operators import AuthenticationError
from storage.settings import get_setting
from storage.subject_key import FILENAME, subject_key
from storage.workspace import Workspace
from tests import approvals, raw_registry
from tests.approvals import passphrase_of


@pytest.fixture()
def ws(shop_ws: Workspace) -> Workspace:
    with shop_ws.sessions.begin() as session:
        for name in ("alice", "bob"):
            approvals.ensure_operator(session, name)
    return shop_ws


def _new(ws: Workspace, operator: str = "alice", subject: str = "ticket-4711") -> int:
    with ws.sessions.begin() as session:
        return approvals.create_request(session, model_name="shop", classes=["shoe"],
                                   subject=subject, legal_basis="GDPR Art. 17(1)(b)",
                                   operator=operator, subject_key=approvals.key_of(ws)).id


def _log(ws: Workspace) -> list[AuditLogEntry]:
    with ws.sessions() as session:
        return list(session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq)))


def test_first_operator_bootstraps_later_ones_need_a_registered_operator(workspace) -> None:
    with workspace.sessions.begin() as session:
        operators.add_operator(session, "ann", passphrase_of("ann"), "ann")
    with pytest.raises(AuthenticationError, match="wrong passphrase for operator 'ann'"), \
            workspace.sessions.begin() as session:
        operators.add_operator(session, "mallory", "mallory pass", "ann", "guess1234")
    with pytest.raises(AuthenticationError, match="'mallory' is not registered"), \
            workspace.sessions.begin() as session:
        operators.add_operator(session, "mallory", "mallory pass", "mallory", "mallory pass")
    with workspace.sessions.begin() as session:
        operators.add_operator(session, "ben", passphrase_of("ben"), "ann", passphrase_of("ann"))
        rows = operators.list_operators(session)
    assert [(r["name"], r["created_by"]) for r in rows] == [("ann", "ann"), ("ben", "ann")]
    payloads = [json.loads(e.payload) for e in _log(workspace)]
    assert [p["bootstrap"] for p in payloads] == [True, False]


def test_only_a_salted_scrypt_verifier_is_stored(workspace) -> None:
    with workspace.sessions.begin() as session:
        operators.add_operator(session, "ann", "same passphrase", "ann")
        operators.add_operator(session, "ben", "same passphrase", "ann", "same passphrase")
    with workspace.sessions() as session:
        ann, ben = session.get(Operator, "ann"), session.get(Operator, "ben")
        assert ann.kdf["scheme"] == "scrypt" and ann.kdf["n"] >= 2**14
        assert ann.kdf["salt"] != ben.kdf["salt"] and ann.verifier != ben.verifier
    assert b"same passphrase" not in raw_registry.database_bytes(workspace.root)


@pytest.mark.parametrize("name,passphrase,message", [
    ("", "long enough", "needs a name"), ("ann", "short", "too short"),
])
def test_bad_operators_are_refused(workspace, name: str, passphrase: str, message: str) -> None:
    with pytest.raises(Exception, match=message), workspace.sessions.begin() as session:
        operators.add_operator(session, name, passphrase, "ann")


def test_recording_with_no_operators_names_the_first_step(shop_ws: Workspace) -> None:
    workspace = shop_ws
    with pytest.raises(AuthenticationError, match="operators add NAME"), \
            workspace.sessions.begin() as session:
        reqs.create_request(session, model_name="shop", classes=["shoe"], subject="t-1",
                            legal_basis="GDPR Art. 17", operator="alice", passphrase=None,
                            subject_key=approvals.key_of(workspace))
    with workspace.sessions() as session:
        assert session.scalars(select(ErasureRequest)).first() is None
    assert _log(workspace) == []


@pytest.mark.parametrize("operator,passphrase,message", [
    ("carol", passphrase_of("carol"), "operator 'carol' is not registered"),
    ("bob", "not bob's passphrase", "wrong passphrase for operator 'bob'"),
    ("bob", None, "must give their passphrase"),
])
def test_unproven_approvals_change_nothing(ws, operator: str, passphrase, message: str) -> None:
    rid = _new(ws)
    before = len(_log(ws))
    with pytest.raises(AuthenticationError, match=message), ws.sessions.begin() as session:
        reqs.approve(session, rid, operator, passphrase)
    with pytest.raises(AuthenticationError, match=message), ws.sessions.begin() as session:
        reqs.reject(session, rid, operator, "duplicate", passphrase)
    with ws.sessions() as session:
        assert session.get(ErasureRequest, rid).status == "received"
    assert len(_log(ws)) == before


def test_four_eyes_is_on_in_new_workspaces_even_for_a_proven_operator(ws) -> None:
    with ws.sessions() as session:
        assert get_setting(session, "four_eyes") is True
    rid = _new(ws, operator="alice")
    with pytest.raises(RefusedError, match="four-eyes"), ws.sessions.begin() as session:
        reqs.approve(session, rid, "alice", passphrase_of("alice"))
    with ws.sessions.begin() as session:
        assert approvals.approve(session, rid, "bob").approved_by == "bob"


def test_approvals_and_rejections_are_signed_and_checkable(ws) -> None:
    approved, rejected = _new(ws), _new(ws)
    with ws.sessions.begin() as session:
        approvals.approve(session, approved, "bob")
        approvals.reject(session, rejected, "bob", "duplicate")
    entry = _log(ws)[-1]
    payload = json.loads(entry.payload)
    assert payload["signature"]["scheme"] == "hmac-sha256/scrypt-passphrase"
    assert payload["signed"]["reason"] == "duplicate" and payload["request"] == rejected
    with ws.sessions() as session:
        assert auditlog.verify(session).valid
        for rid, action in ((approved, "request.approved"), (rejected, "request.rejected")):
            check = decisions.check(session, session.get(ErasureRequest, rid), action,
                                    passphrase_of("bob"))
            assert check["valid"] and check["matches_request"] and check["operator"] == "bob"
        with pytest.raises(AuthenticationError, match="wrong passphrase"):
            decisions.check(session, session.get(ErasureRequest, approved),
                            "request.approved", "guess1234")
    with ws.sessions.begin() as session:  # someone edits the approved request's scope
        request = session.get(ErasureRequest, approved)
        request.legal_basis = "consent"
    with ws.sessions() as session:
        check = decisions.check(session, session.get(ErasureRequest, approved),
                                "request.approved", passphrase_of("bob"))
    assert check["valid"] and not check["matches_request"]


def test_the_database_alone_does_not_confirm_a_guessed_reference(ws) -> None:
    rid, again = _new(ws), _new(ws)
    database = raw_registry.database_bytes(ws.root)
    key = approvals.key_of(ws)
    with ws.sessions() as session:
        a, b = session.get(ErasureRequest, rid), session.get(ErasureRequest, again)
        guesses = [f"{a.subject_salt}:ticket-4711", "ticket-4711", ":ticket-4711"]
        assert all(hashlib.sha256(g.encode()).hexdigest() != a.subject_hash for g in guesses)
        assert a.subject_scheme == "hmac-sha256" and a.subject_hash == b.subject_hash
        assert reqs.subject_matches(a, "ticket-4711", key)
        assert not reqs.subject_matches(a, "ticket-4712", key)
    assert key not in database and key.hex().encode() not in database


def test_the_subject_key_is_private_and_stable(workspace) -> None:
    keys = workspace.keys_dir
    key = subject_key(keys)
    assert subject_key(keys) == key and len(key) == 32
    assert stat.S_IMODE((keys / FILENAME).stat().st_mode) == 0o600
    assert sorted(p.name for p in keys.iterdir()) == [FILENAME]  # no temporary file left
    (keys / FILENAME).write_bytes(b"short")
    with pytest.raises(IntegrityError, match="damaged"):
        subject_key(keys)


def test_upgrading_an_old_workspace_keeps_its_settings_and_salted_hashes(tmp_path) -> None:
    root = tmp_path / "old"
    engine = make_engine(raw_registry.empty_registry(root))
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        salt = "ab" * 16
        digest = reqs.hash_subject("ticket-4711", salt)
        connection.execute(text(
            "INSERT INTO erasure_requests (received_at, due_at, subject_hash, subject_salt, "
            "legal_basis, scope, status, requested_by, result) VALUES ('2026-01-01 00:00:00', "
            f"'2026-01-31 00:00:00', '{digest}', '{salt}', 'GDPR', '{{}}', 'received', "
            "'alice', '{}')"))
        connection.execute(text(
            "INSERT INTO audit_log VALUES (1, '2026-01-01T00:00:00', 'alice', "
            "'request.received', '{}', :genesis, 'x')"), {"genesis": auditlog.GENESIS})
    engine.dispose()
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            assert get_setting(session, "four_eyes") is False
            old = session.get(ErasureRequest, 1)
            assert old.subject_scheme == "salted-sha256"
            assert reqs.subject_matches(old, "ticket-4711", approvals.key_of(ws))
            assert reqs.request_dict(old)["subject_scheme"] == "salted-sha256"
    finally:
        ws.close()
