"""A forget killed at any step leaves the old or the new version, never something between."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.forget import CRASH_ENV
from storage import auditlog
from storage.models import Artifact, ClassEntry, ModelVersion
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
