"""Several processes on one PostgreSQL registry at once (docs/design.md section 12): approving
the same requests, forgetting classes of the same model and appending to the log. Afterwards
the chain verifies, every request was approved exactly once and no version is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import auditlog, settings
from storage.models import AuditLogEntry, ErasureRequest, Model
from storage.subject_key import subject_key
from storage.versions import NewModel, register_model
from storage.workspace import Workspace
from tests.approvals import create_request, ensure_operator

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, REQUESTS, FORGETS, APPENDS, CLASSES = 3, 4, 4, 8, 16
pytestmark = pytest.mark.postgresql_only


def _setup(ws: Workspace) -> list[int]:
    """Four-eyes off (any operator approves), an operator per process, 'shop', open requests."""
    key = subject_key(ws.keys_dir)
    with ws.sessions.begin() as session:
        settings.set_setting(session, "four_eyes", False, "admin")
        for i in range(PROCESSES):
            ensure_operator(session, f"op{i}")
        names = {i: f"c{i}" for i in range(CLASSES)}
        register_model(session, NewModel("shop", "image", "vit", "full", {}, {}, "s" * 64,
                                         {i: f"{i:064x}" for i in names}, names, {},
                                         "exact"), "admin")
        return [create_request(session, model_name="shop", subject=f"ticket-{i}",
                               legal_basis="GDPR Art. 17", operator="admin", subject_key=key,
                               classes=[f"c{i}"]).id for i in range(REQUESTS)]


def _run_workers(root: Path, requests: list[int]) -> list[dict]:
    workers = [subprocess.Popen(
        [sys.executable, "-m", "tests.storage.registry_worker", str(root), f"op{i}",
         json.dumps(requests), str(FORGETS), str(APPENDS)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(PROCESSES)]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.splitlines()[-1]))
    return results


def test_processes_approving_forgetting_and_appending_at_once(workspace: Workspace) -> None:
    requests = _setup(workspace)
    with workspace.sessions() as session:
        before = auditlog.verify(session).entries
    results = _run_workers(workspace.root, requests)
    with workspace.sessions() as session:
        report = auditlog.verify(session)
        approvals = [json.loads(e.payload)["request"] for e in session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "request.approved"))]
        statuses = {r.id: r.status for r in session.scalars(select(ErasureRequest))}
        model = session.scalars(select(Model).where(Model.name == "shop")).one()
        numbers = sorted(v.number for v in model.versions)
        parents = {v.id: v.parent_id for v in model.versions}
        by_number = {v.number: v.id for v in model.versions}
        forgotten = [c for c in model.classes if c.status == "forgotten"]
    won = sorted(r for result in results for r in result["approved"])
    forgets = sum(result["forgotten"] for result in results)
    appends = sum(result["appended"] for result in results)
    assert report.valid, report
    assert report.entries == before + len(won) + forgets + appends  # nothing lost, no fork
    assert won == sorted(approvals) == sorted(requests)  # each approved once, by one process
    assert set(statuses.values()) == {"approved"}
    assert forgets == PROCESSES * FORGETS == len(forgotten)
    assert numbers == list(range(1, forgets + 2))  # no version lost, none numbered twice
    assert all(parents[by_number[n]] == by_number[n - 1] for n in numbers[1:])
