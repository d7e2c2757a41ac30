"""Two models trained alike share class artifacts: a forget never breaks the other one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.forget import forget_job
from engine.image_jobs import evaluate_model
from engine.jobs import run_job
from storage.errors import RefusedError
from storage.models import ClassEntry, Model, ModelVersion
from storage.workspace import Workspace
from tests.cli.helpers import assert_clean_error, call_cli
from tests.image.conftest import train_tiny


def _live(root: Path) -> dict[str, tuple[int, dict]]:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        out = {m.name: next((v.number, dict(v.class_artifacts)) for v in m.versions
                            if v.status == "live") for m in session.query(Model)}
    ws.close()
    return out


@pytest.fixture(scope="module")
def twins_built(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'demo' and 'twin', trained with the same seed and configuration (once per module)."""
    root = tmp_path_factory.mktemp("twins") / "ws"
    shutil.copytree(trained_workspace, root)
    train_tiny(root, name="twin")
    live = _live(root)
    assert live["demo"][1]["3"] == live["twin"][1]["3"]  # the same bytes, one file
    return root


@pytest.fixture()
def twins(twins_built: Path, tmp_path: Path) -> Path:
    """A private copy of the twins' workspace."""
    root = tmp_path / "twins"
    shutil.copytree(twins_built, root)
    return root


def test_a_forget_refuses_and_names_the_model_that_holds_the_same_bytes(twins: Path) -> None:
    before = _live(twins)
    with pytest.raises(RefusedError, match="'twin' \\(classes .*3"):
        run_job(forget_job(twins, model_name="demo", classes=["3"], operator="alice"))
    assert _live(twins) == before
    assert evaluate_model(twins, "twin")["version"] == 1  # the other model still loads


def test_also_shared_forgets_the_bytes_from_both_models(twins: Path) -> None:
    victim = _live(twins)["demo"][1]["3"]
    result = run_job(forget_job(twins, model_name="demo", classes=["3"], operator="alice",
                                also_shared=True))
    assert result["also_forgotten"] == [{"model": "twin", "version": 2, "classes": [3]}]
    assert victim in result["purged"] and result["residual_scan"]["clean"]
    assert not (twins / "artifacts" / victim).exists()
    other = evaluate_model(twins, "twin")  # loads: it no longer points at the purged file
    assert other["version"] == 2 and "3" not in _live(twins)["twin"][1]
    ws = Workspace.open(twins)
    with ws.sessions() as session:
        assert {c.status for c in session.query(ClassEntry).filter_by(label_index=3)} == \
            {"forgotten"}
        assert session.query(ModelVersion).filter_by(status="purged").count() == 2
    ws.close()


def test_cli_names_the_other_model_and_forgets_from_both_when_asked(twins: Path) -> None:
    assert_clean_error(call_cli("--workspace", str(twins), "forget", "demo", "--class", "4"),
                       "'twin' (classes 4)")
    out = call_cli("--workspace", str(twins), "forget", "demo", "--class", "4", "--also-shared")
    assert out.returncode == 0, out.stderr
    assert "Also forgot classes 4 from twin (v2): it held the same bytes." in out.stdout
