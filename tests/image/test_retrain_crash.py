"""A retrain killed at any step leaves the old live version or the complete new one,
never something between, and can be run again (docs/design.md section 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.forget import CRASH_ENV
from engine.jobs import run_job
from engine.retrain import retrain_job
from storage import auditlog
from storage import requests as reqs
from storage.models import Artifact, AuditLogEntry
from storage.registry import get_model, live_version
from storage.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ("import sys, torch; torch.set_num_threads(1); from engine.retrain import "
          "retrain_job; from engine.jobs import run_job; "
          "run_job(retrain_job(sys.argv[1], model_name='demo', operator='carol'))")


def _retrain_and_die(root: Path, step: str) -> int:
    env = {**os.environ, CRASH_ENV: step}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], cwd=ROOT, env=env,
                          capture_output=True, timeout=300)
    return proc.returncode


def _snapshot(root: Path) -> dict:
    ws = Workspace.open(root)  # reopening resumes an interrupted purge and its scan
    with ws.sessions() as session:
        model = get_model(session, "demo")
        request = reqs.get_request(session, 1)
        snap = {"live": live_version(session, model).number,
                "exact": request.exact_at is not None,
                "purging": session.query(Artifact).filter_by(status="purging").count(),
                "scan": (request.result.get("retrain") or {}).get("residual_scan", {}).get(
                    "clean"),
                "chain": auditlog.verify(session).valid}
    ws.close()
    return snap


OLD = {"live": 3, "exact": False, "purging": 0, "scan": None, "chain": True}
NEW = {"live": 4, "exact": True, "purging": 0, "scan": True, "chain": True}


@pytest.mark.parametrize("step,expected", [
    ("retrain-before-commit", OLD), ("retrain-mid-purge", NEW),  # mid-purge: after the commit
])
def test_killed_retrain_leaves_a_complete_version(forgotten: Path, step: str,
                                                  expected: dict) -> None:
    assert _retrain_and_die(forgotten, step) == 137
    assert _snapshot(forgotten) == expected
    if expected is OLD:  # rerun: the stored reference is promoted, nothing half-done
        out = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
        assert out["cached"] and out["status"] == "promoted"
        assert _snapshot(forgotten) == NEW
    else:
        ws = Workspace.open(forgotten)
        with ws.sessions() as session:
            actions = [e.action for e in session.query(AuditLogEntry)]
            assert "model.retrain_resumed" in actions
        ws.close()
