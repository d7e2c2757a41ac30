"""A held retrain of a fine-tuned language model that an operator rejects leaves no weights
behind (docs/design.md section 18.1): its folder is destroyed right after the decision, and
by the next `Workspace.open` when the decision was killed before that."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.guard import subject_jobs as jobs
from engine.jobs import run_job
from engine.retrain import retrain_job
from storage.models import AuditRun
from storage.settings import set_setting
from storage.workspace import Workspace
from tests import approvals
from tests.guard.finetuned import copy_workspace


@pytest.fixture()
def held(crm_suppressed: Path, tmp_path: Path) -> Path:
    """A copy of 'crm' whose retrain is held for a decision (its weights in v2)."""
    root = copy_workspace(crm_suppressed, tmp_path / "ws")
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        set_setting(session, "retrain_margin", -1.0, "admin")  # any retrain is "too low"
    ws.close()
    out = run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    assert out["status"] == "awaiting_decision"
    assert _folders(root) == ["v1", "v2"]
    return root


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in (root / jobs.MODELS_DIR / "crm").iterdir())


def _reject(root: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    from cli.app import main

    monkeypatch.setenv("UNPROMPT_OPERATOR_PASSPHRASE", approvals.passphrase_of("bob"))
    return main(["--workspace", str(root), "--operator", "bob", "retrain", "crm", "--reject",
                 "--reason", "too far below the live version"])


def _run_metrics(root: Path) -> dict:
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            return session.query(AuditRun).filter_by(kind="reference").one().metrics
    finally:
        ws.close()


def test_a_rejected_retrain_destroys_its_weights(held: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    weights = (held / jobs.MODELS_DIR / "crm" / "v2" / "model.safetensors").read_bytes()
    assert _reject(held, monkeypatch) == 0
    assert _folders(held) == ["v1"]
    assert weights[-4096:] not in b"".join(p.read_bytes() for p in held.rglob("*")
                                           if p.is_file())
    metrics = _run_metrics(held)
    assert metrics["retrain"]["status"] == "rejected" and metrics["folder_destroyed"]


def test_killed_before_the_cleanup_the_next_open_destroys_them(
        held: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.forget

    def die(step: str) -> None:
        if step == "retrain-rejected-before-cleanup":
            raise KeyboardInterrupt  # as a power cut would, once the decision is committed

    monkeypatch.setattr(engine.forget, "crash_point", die)
    assert _reject(held, monkeypatch) == 130
    assert _folders(held) == ["v1", "v2"]
    assert _run_metrics(held)["retrain"]["status"] == "rejected"  # the decision stands
    Workspace.open(held).close()
    assert _folders(held) == ["v1"] and _run_metrics(held)["folder_destroyed"]
