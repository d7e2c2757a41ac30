"""Reads never block writers (issue 14.11): a session held open for reading, in this process,
while ANOTHER PROCESS writes. Before, every session began with BEGIN IMMEDIATE, so the
writer waited out the 30 s busy timeout and failed with "database is locked"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import auditlog
from storage.models import AuditLogEntry
from storage.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
from storage import auditlog
from storage.workspace import Workspace
ws = Workspace.open(sys.argv[1])
for i in range(int(sys.argv[2])):
    with ws.sessions.begin() as session:
        auditlog.append(session, sys.argv[3], "test.write", {"i": i})
ws.close()
"""


def start_writer(root: Path, count: int, actor: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(count), actor],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def entries(ws: Workspace) -> int:
    with ws.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditLogEntry))


def test_another_process_writes_while_a_session_reads(workspace_dir: Path) -> None:
    ws = Workspace.open(workspace_dir)
    try:
        with ws.sessions.begin() as session:
            auditlog.append(session, "test", "test.first", {})
        with ws.sessions() as reading:  # a long read: the snapshot stays open meanwhile
            assert reading.scalar(select(func.count()).select_from(AuditLogEntry)) == 1
            writer = start_writer(workspace_dir, 3, "other-process")
            _out, err = writer.communicate(timeout=120)  # generous: it must not wait at all
            assert writer.returncode == 0, err[-2000:]
            assert reading.scalar(select(func.count()).select_from(AuditLogEntry)) == 1
        assert entries(ws) == 4
    finally:
        ws.close()


@pytest.mark.sqlite_only  # on PostgreSQL: test_team_concurrency.py, with approvals and forgets
def test_writers_in_several_processes_keep_one_chain(workspace_dir: Path) -> None:
    """Write units still take the write lock before reading the log head, so concurrent
    appends from several processes queue and the chain has no fork or gap."""
    Workspace.open(workspace_dir).close()
    writers = [start_writer(workspace_dir, 15, f"p{i}") for i in range(3)]
    for writer in writers:
        _out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-2000:]
    ws = Workspace.open(workspace_dir)
    try:
        with ws.sessions() as session:
            report = auditlog.verify(session)
        assert report.valid and report.entries == 45, report
    finally:
        ws.close()
