"""A job refused by a check after training stores no byte that no version points to."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.forget import forget_job
from engine.image_jobs import learn_job, train_model_job
from engine.jobs import run_job
from engine.scrub import scrub_job
from storage.errors import RefusedError, UnpromptError
from storage.models import Artifact
from storage.workspace import Workspace
from tests.image.conftest import TINY
from tests.image.test_learn import _digit_pngs


def _stored(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The artifact files and the Artifact rows with their status."""
    ws = Workspace.open(root)
    with ws.sessions() as session:
        rows = sorted((a.sha256, a.status) for a in session.query(Artifact))
    ws.close()
    return sorted(p.name for p in (root / "artifacts").iterdir()), rows


def test_a_learn_that_changed_another_class_stores_nothing(
        ws_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from engine import training

    real = training.learn_class_job

    def nudging(model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        result = yield from real(model, *args, **kwargs)
        with torch.no_grad():
            result.model.prompts["0"].add_(1.0)  # a fault: class 0's bytes change
        return result

    monkeypatch.setattr(training, "learn_class_job", nudging)
    before = _stored(ws_root)
    with pytest.raises(UnpromptError, match="changed existing parameters"):
        run_job(learn_job(ws_root, model_name="demo", class_name="zero-again",
                          data_dir=str(_digit_pngs(tmp_path / "zeros", 0, 8)),
                          operator="alice", epochs=1))
    assert _stored(ws_root) == before


def test_a_scrub_that_changed_class_artifacts_stores_nothing(
        ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import scrub

    run_job(forget_job(ws_root, model_name="demo", classes=["3"], operator="alice"))
    real = scrub._shared_parameters

    def leaky(model):  # noqa: ANN001, ANN202 - a fault: class prompts train too
        params = real(model)
        return params + [(f"prompt.{k}", p.requires_grad_(True))
                         for k, p in model.prompts.items()]

    monkeypatch.setattr(scrub, "_shared_parameters", leaky)
    before = _stored(ws_root)
    with pytest.raises(UnpromptError, match="changed class artifacts"):
        run_job(scrub_job(ws_root, model_name="demo", operator="alice", steps=4))
    assert _stored(ws_root) == before


def test_a_registration_refused_after_training_removes_its_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process takes the name while this one trains: the register refuses."""
    import torch

    from engine import image_jobs

    torch.set_num_threads(1)
    root = tmp_path / "ws"
    monkeypatch.setattr(image_jobs, "refuse_taken_name", lambda ws, name: None)
    run_job(train_model_job(root, name="demo", operator="alice", **TINY))
    before = _stored(root)
    with pytest.raises(RefusedError, match="already exists"):
        run_job(train_model_job(root, name="demo", operator="alice",
                                **{**TINY, "seed": 1, "epochs": 1}))
    files, rows = _stored(root)
    assert files == before[0]  # the new model's bytes are gone
    assert {sha for sha, status in rows if status == "stored"} == set(before[0])
