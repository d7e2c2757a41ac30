"""A forget killed at any step leaves the old or the new version, never something between."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.forget import CRASH_ENV
from storage import auditlog
from storage.models import Artifact, AuditLogEntry, ClassEntry, ModelVersion
from storage.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ("import sys; from engine.forget import forget_job; from engine.jobs import run_job; "
          "run_job(forget_job(sys.argv[1], model_name='demo', classes=['7'], operator='a'))")


def _forget_and_die(root: Path, step: str) -> int:
    env = {**os.environ, CRASH_ENV: step}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], cwd=ROOT, env=env,
                          capture_output=True, timeout=180)
    return proc.returncode


def _snapshot(root: Path) -> dict:
    ws = Workspace.open(root)  # reopening resumes an interrupted purge
    with ws.sessions() as session:
        live = session.query(ModelVersion).filter_by(status="live").one()
        seven = session.query(ClassEntry).filter_by(label_index=7).one()
        v1 = session.query(ModelVersion).filter_by(number=1).one()
        victim = v1.class_artifacts["7"]
        snap = {"live": live.number, "class": seven.status,
                "artifact": session.get(Artifact, victim).status,
                "file": (root / "artifacts" / victim).exists(),
                "chain": auditlog.verify(session).valid}
    ws.close()
    return snap


OLD = {"live": 1, "class": "learned", "artifact": "stored", "file": True, "chain": True}
NEW = {"live": 2, "class": "forgotten", "artifact": "purged", "file": False, "chain": True}


@pytest.mark.parametrize("step,expected", [
    ("before-commit", OLD), ("after-commit", NEW), ("mid-purge", NEW), ("after-purge", NEW),
])
def test_killed_forget_leaves_a_complete_version(ws_root: Path, step: str,
                                                 expected: dict) -> None:
    assert _forget_and_die(ws_root, step) == 137
    assert _snapshot(ws_root) == expected


def test_purge_interrupted_after_commit_is_finished_at_next_start(ws_root: Path) -> None:
    _forget_and_die(ws_root, "after-commit")
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        assert session.query(Artifact).filter_by(status="purging").count() == 0
    ws.close()


REQUEST_SCRIPT = ("import sys; from engine.forget import forget_job; from engine.jobs import "
                  "run_job; run_job(forget_job(sys.argv[1], model_name='demo', classes=['7'], "
                  "operator='a', request=int(sys.argv[2])))")


def _request_for_seven(root: Path) -> int:
    from tests import approvals

    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        rid = approvals.create_request(session, model_name="demo", classes=["7"],
                                       subject="subject-7", legal_basis="GDPR Art. 17",
                                       operator="alice", subject_key=approvals.key_of(ws)).id
        approvals.approve(session, rid, "bob")
    ws.close()
    return rid


def _victim_tensors(root: Path) -> list[bytes]:
    from engine.serialize import class_tensor_fingerprints

    ws = Workspace.open(root)
    with ws.sessions() as session:
        sha = session.query(ModelVersion).filter_by(number=1).one().class_artifacts["7"]
    ws.close()
    return class_tensor_fingerprints((root / "artifacts" / sha).read_bytes())


def _killed_after_purge(root: Path) -> int:
    rid = _request_for_seven(root)
    env = {**os.environ, CRASH_ENV: "after-purge"}
    proc = subprocess.run([sys.executable, "-c", REQUEST_SCRIPT, str(root), str(rid)],
                          cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert proc.returncode == 137
    return rid


def test_scan_and_checks_cut_off_by_a_crash_are_resumed_at_next_start(ws_root: Path) -> None:
    from engine.image_jobs import evaluate_model
    from reports.certificate_facts import check_certifiable
    from storage import requests as reqs

    removed = _victim_tensors(ws_root)
    rid = _killed_after_purge(ws_root)
    ws = Workspace.open(ws_root)  # resumes the scan from the fingerprints the commit kept
    with ws.sessions() as session:
        request = reqs.get_request(session, rid)
        scan = request.result["residual_scan"]
        assert scan["clean"] and scan["resumed"] and scan["patterns"] == len(removed)
        check_certifiable(session, request)  # the request can be certified again
        live = session.query(ModelVersion).filter_by(status="live").one()
        assert "forget_pending" not in live.metrics and live.metrics["evaluation_pending"]
        assert "accuracy_before" in live.metrics
        assert auditlog.verify(session).valid
        actions = [e.action for e in session.query(AuditLogEntry).order_by(AuditLogEntry.seq)]
        assert actions[-2:] == ["model.forget_resumed", "request.erasure_checked"]
    ws.close()
    registry = (ws_root / "registry.db").read_bytes()  # fingerprints, never the bytes
    assert not any(tensor in registry for tensor in removed)
    evaluate_model(ws_root, "demo")  # the next job on the model measures step 5
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        live = session.query(ModelVersion).filter_by(status="live").one()
        assert live.metrics["accuracy_after"]["forgotten"] == {"7": 0.0}
        assert "evaluation_pending" not in live.metrics
    ws.close()


def test_a_resumed_scan_still_finds_a_leaked_copy(ws_root: Path) -> None:
    from storage import requests as reqs

    removed = _victim_tensors(ws_root)
    rid = _killed_after_purge(ws_root)
    (ws_root / "certificates" / "backup.bin").write_bytes(b"header" + removed[-1] + b"tail")
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        scan = reqs.get_request(session, rid).result["residual_scan"]
    ws.close()
    assert not scan["clean"]
    assert {"file": "certificates/backup.bin", "pattern": len(removed) - 1} in scan["hits"]


def test_a_forget_still_running_in_another_process_is_left_to_finish(ws_root: Path) -> None:
    """Opening the workspace (the GUI, a CLI command) while another process's forget is
    between its commit and its scan does not scan and record in its place."""
    from storage.post_forget import PENDING, resume_checks

    rid = _killed_after_purge(ws_root)
    ws = Workspace.open(ws_root)
    with ws.sessions.begin() as session:  # the same moment, with a live process's pid
        live = session.query(ModelVersion).filter_by(status="live").one()
        live.metrics = {**live.metrics, PENDING: {"fingerprints": [], "purge": [],
                                                  "request": rid, "operator": "a",
                                                  "pid": os.getppid()}}
    assert resume_checks(ws_root, ws.sessions) == []
    ws.close()
