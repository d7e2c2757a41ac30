"""A forget interleaved with a long job of the same model (issue 22).

The worker runs an interactive forget at one of a long job's yields (``engine.worker``);
these tests do the same by hand: the forget commits first, and the long job, which made
its result from the forgotten class's data, registers nothing."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from engine.forget import forget_job
from engine.image_jobs import learn_job
from engine.jobs import run_job
from engine.scrub import scrub_job
from storage import auditlog
from storage.errors import RefusedError
from storage.models import ClassEntry, ModelVersion
from storage.workspace import Workspace
from tests.image.test_learn import _digit_pngs

STEPS = 8


def _forget(root: Path, classes: list[str]) -> dict[str, Any]:
    return run_job(forget_job(root, model_name="demo", classes=classes, operator="bob"))


def _interleave(job: Generator, during: Any) -> None:
    """Drive ``job``; after its first progress record run ``during()``, then go on."""
    next(job)
    during()
    run_job(job)


def _registry(root: Path) -> tuple[list[tuple[int, str]], list[str], list[str]]:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        versions = session.query(ModelVersion).order_by(ModelVersion.number).all()
        classes = [c.display_name for c in session.query(ClassEntry)
                   .filter_by(status="forgotten").order_by(ClassEntry.label_index)]
        shas = [sha for v in versions for sha in v.class_artifacts.values()]
        assert auditlog.verify(session).valid
    ws.close()
    return [(v.number, v.status) for v in versions], classes, shas


def _class_sha(root: Path, label: int) -> str:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        sha = session.query(ModelVersion).filter_by(number=1).one().class_artifacts[str(label)]
    ws.close()
    return sha


def test_a_learn_refuses_to_commit_after_a_class_was_forgotten_meanwhile(
        ws_root: Path, tmp_path: Path) -> None:
    sha = _class_sha(ws_root, 3)
    job = learn_job(ws_root, model_name="demo", class_name="zero", epochs=1,
                    data_dir=str(_digit_pngs(tmp_path / "zeros", 0, count=10)),
                    operator="alice")
    with pytest.raises(RefusedError, match="'3' was forgotten while it ran"):
        _interleave(job, lambda: _forget(ws_root, ["3"]))
    versions, forgotten, _ = _registry(ws_root)
    assert versions == [(1, "purged"), (2, "live")] and forgotten == ["3"]
    assert not (ws_root / "artifacts" / sha).exists()  # the class's bytes stay purged


def test_a_scrub_refuses_to_commit_after_a_class_was_forgotten_meanwhile(
        ws_root: Path) -> None:
    _forget(ws_root, ["3"])
    sha = _class_sha(ws_root, 5)
    job = scrub_job(ws_root, model_name="demo", operator="alice", steps=STEPS)
    with pytest.raises(RefusedError, match="'5' was forgotten while it ran"):
        _interleave(job, lambda: _forget(ws_root, ["5"]))
    versions, forgotten, _ = _registry(ws_root)
    assert [n for n, _ in versions] == [1, 2, 3] and versions[-1][1] == "live"
    assert forgotten == ["3", "5"]
    assert not (ws_root / "artifacts" / sha).exists()
