"""Two timestamps per request (migration 0004_request_exact, docs/design.md section 18)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from storage import requests as reqs
from storage.db import alembic_config, make_engine
from storage.models import ErasureRequest
from storage.workspace import Workspace

ROW = ("INSERT INTO erasure_requests (received_at, due_at, subject_hash, subject_salt, "
       "legal_basis, scope, status, requested_by, result, executed_at, erasure_kind, "
       "subject_scheme) VALUES ('2026-01-01 00:00:00', '2026-01-31 00:00:00', 'h', 's', "
       "'GDPR', '{}', :status, 'alice', '{}', :executed, :kind, 'salted-sha256')")


@pytest.mark.sqlite_only  # it builds an old SQLite registry itself
def test_upgrading_fills_the_suppressed_clock_and_never_the_exact_one(tmp_path: Path) -> None:
    """Rows from before the migration that recorded 'exact' were isolated-mode erasures
    (exact by construction), not retrain-equivalent ones: suppressed, not exact."""
    root = tmp_path / "old"
    root.mkdir()
    engine = make_engine(f"sqlite:///{root / 'registry.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003_operators")
        for status, executed, kind in (("executed", "2026-01-05 10:00:00", "exact"),
                                       ("verified", "2026-01-06 11:00:00", "approximate"),
                                       ("received", None, None)):
            connection.execute(text(ROW), {"status": status, "executed": executed,
                                           "kind": kind})
    engine.dispose()
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            exact, approximate, received = (session.get(ErasureRequest, i) for i in (1, 2, 3))
            assert exact.suppressed_at == exact.executed_at and exact.exact_at is None
            assert approximate.suppressed_at == approximate.executed_at
            assert approximate.exact_at is None  # waits for a retrain
            assert received.suppressed_at is None and received.exact_at is None
            assert reqs.request_dict(approximate)["suppressed_at"].startswith("2026-01-06T11")
    finally:
        ws.close()


def test_executing_sets_suppressed_and_exact_only_for_an_exact_kind(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    try:
        with ws.sessions.begin() as session:
            rows = [ErasureRequest(received_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                   due_at=dt.datetime(2026, 1, 31, tzinfo=dt.UTC),
                                   subject_hash="h", subject_salt="", legal_basis="GDPR",
                                   status="approved", requested_by="alice")
                    for _ in range(2)]
            session.add_all(rows)
            session.flush()
            reqs.mark_executed(session, rows[0], "bob", "exact", {})
            reqs.mark_executed(session, rows[1], "bob", "approximate", {})
            assert rows[0].exact_at == rows[0].suppressed_at == rows[0].executed_at
            assert rows[1].suppressed_at == rows[1].executed_at and rows[1].exact_at is None
    finally:
        ws.close()
