"""Post-forget scrub of lora / full models: a new version with new shared weights, the
pre-scrub weights purged, approximate erasure stated; isolated models refuse it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.forget import CRASH_ENV, forget_job
from engine.jobs import run_job
from engine.scrub import scrub_job
from storage import auditlog
from storage import requests as reqs
from storage.errors import RefusedError, UnpromptError
from storage.models import Artifact, ModelVersion
from storage.workspace import Workspace
from tests import approvals
from tests.cli.helpers import assert_clean_error, call_cli, call_json
from tests.image.conftest import train_tiny

STEPS = 8  # a few batches: enough to move every shared weight, seconds on one thread


def _forget(root: Path, classes: list[str], **options) -> dict:  # noqa: ANN003
    return run_job(forget_job(root, model_name="demo", classes=classes, operator="alice",
                              **options))


def _versions(root: Path) -> list[ModelVersion]:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        versions = session.query(ModelVersion).order_by(ModelVersion.number).all()
        assert auditlog.verify(session).valid
    ws.close()
    return versions


@pytest.fixture(scope="module")
def exact_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen-mode model on a random backbone: isolated erasure (no shared weight learned)."""
    root = tmp_path_factory.mktemp("exact") / "ws"
    train_tiny(root, mode="frozen", epochs=1)
    return root


def test_forget_with_scrub_replaces_and_purges_the_shared_weights(ws_root: Path) -> None:
    (v1,) = _versions(ws_root)
    result = _forget(ws_root, ["3"], scrub=STEPS)
    assert (result["from_version"], result["version"]) == (1, 3)
    assert result["erasure_kind"] == "approximate"
    assert result["erasure_statement"].startswith("Approximate erasure")
    scrub = result["scrub"]
    assert scrub["steps"] == STEPS and scrub["seconds"] > 0 and scrub["tensors_changed"] > 0
    assert scrub["purged"] == [v1.shared_artifact]
    assert scrub["residual_scan"]["clean"] and scrub["residual_scan"]["patterns"] > 0
    assert result["accuracy_after"]["forgotten"] == {"3": 0.0}
    assert result["accuracy_after"]["retained"] >= result["accuracy_before"]["retained"] - 0.15
    assert not (ws_root / "artifacts" / v1.shared_artifact).exists()
    versions = _versions(ws_root)
    assert [v.status for v in versions] == ["purged", "purged", "live"]
    live = versions[-1]
    assert live.shared_artifact != v1.shared_artifact and live.erasure_kind == "approximate"
    assert live.class_artifacts == versions[1].class_artifacts  # class bytes untouched
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        assert session.get(Artifact, v1.shared_artifact).status == "purged"
    ws.close()


def test_scrub_scan_finds_a_leaked_copy_of_the_old_weights(ws_root: Path) -> None:
    _forget(ws_root, ["5"])
    shared = _versions(ws_root)[-1].shared_artifact
    (ws_root / "certificates" / "old.bin").write_bytes((ws_root / "artifacts" / shared)
                                                       .read_bytes())
    result = run_job(scrub_job(ws_root, model_name="demo", operator="alice", steps=STEPS))
    assert result["residual_scan"]["clean"] is False
    assert {h["file"] for h in result["residual_scan"]["hits"]} == {"certificates/old.bin"}


def test_scrub_is_recorded_with_the_request(ws_root: Path) -> None:
    ws = Workspace.open(ws_root)
    with ws.sessions.begin() as session:
        rid = approvals.create_request(session, model_name="demo", classes=["4"],
                                  subject_key=approvals.key_of(ws),
                                  subject="subject-9", legal_basis="GDPR Art. 17",
                                  operator="alice").id
        approvals.approve(session, rid, "bob")
    ws.close()
    result = _forget(ws_root, ["4"], request=rid, scrub=STEPS)
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        request = reqs.get_request(session, rid)
        assert request.erasure_kind == "approximate" and request.status == "executed"
        assert request.result["version"] == result["version"]
        assert request.result["scrub"]["steps"] == STEPS
        assert request.result["scrub"]["residual_scan"]["clean"]
    ws.close()


def test_scrub_killed_after_commit_is_finished_at_next_start(
        ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _forget(ws_root, ["6"])
    old = _versions(ws_root)[-1].shared_artifact

    def die(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setenv(CRASH_ENV, "scrub-after-commit")
    monkeypatch.setattr(os, "_exit", die)
    with pytest.raises(SystemExit):
        run_job(scrub_job(ws_root, model_name="demo", operator="alice", steps=STEPS))
    versions = _versions(ws_root)  # reopening resumed the purge
    assert versions[-1].status == "live" and versions[-1].shared_artifact != old
    assert not (ws_root / "artifacts" / old).exists()


def test_scrub_refusals_change_nothing(ws_root: Path, exact_workspace: Path,
                                       tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="no forgotten class"):
        run_job(scrub_job(ws_root, model_name="demo", operator="alice", steps=STEPS))
    with pytest.raises(UnpromptError, match="steps must be"):
        _forget(ws_root, ["2"], scrub=0)
    assert len(_versions(ws_root)) == 1
    exact = tmp_path / "exact"
    shutil.copytree(exact_workspace, exact)
    with pytest.raises(RefusedError, match="nothing to scrub"):
        _forget(exact, ["2"], scrub=STEPS)
    assert len(_versions(exact)) == 1  # refused before the forget, too
    result = _forget(exact, ["2"])
    assert result["erasure_kind"] == "isolated"
    assert result["erasure_statement"].startswith("Isolated erasure (frozen mode")
    assert [v.erasure_kind for v in _versions(exact)] == ["isolated", "isolated"]


def test_cli_forget_with_scrub(ws_root: Path, exact_workspace: Path,
                               tmp_path: Path) -> None:
    result = call_json("--workspace", str(ws_root), "forget", "demo", "--class", "1",
                       "--scrub", "--scrub-steps", str(STEPS))
    for key in ("version", "latency_ms", "accuracy_before", "accuracy_after", "purged",
                "residual_scan", "erasure_kind", "erasure_statement", "scrub"):
        assert key in result
    assert result["erasure_kind"] == "approximate" and result["version"] == 3
    assert {"seconds", "steps", "residual_scan", "purged"} <= set(result["scrub"])
    assert_clean_error(call_cli("--workspace", str(ws_root), "forget", "demo", "--class", "2",
                                "--scrub-steps", "5"), "needs --scrub")
    exact = tmp_path / "exact"
    shutil.copytree(exact_workspace, exact)
    assert_clean_error(call_cli("--workspace", str(exact), "forget", "demo", "--class", "2",
                                "--scrub"), "nothing to scrub")


def test_cli_default_steps_match_the_engine() -> None:
    from cli.image_cmds import SCRUB_STEPS
    from engine.scrub import DEFAULT_STEPS

    assert SCRUB_STEPS == DEFAULT_STEPS
