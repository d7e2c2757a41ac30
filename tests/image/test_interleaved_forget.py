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


def _interleave(job: Generator, during: Any, records: int = 1) -> None:
    """Drive ``job``; after its ``records``-th progress record run ``during()``, then go
    on (as the worker does when a job arrives at that yield)."""
    for _ in range(records):
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


@pytest.mark.slow  # a real worker imports torch and forgets: about 20 s each
@pytest.mark.parametrize(("step", "live"), [("before-commit", 1), ("after-commit", 2)])
def test_a_worker_dying_in_an_interleaved_forget_fails_both_jobs(
        ws_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str,
        live: int) -> None:
    """The real worker: a long job waits at its gate, a forget interleaved with it kills the
    process at ``step``. Both jobs are reported failed; the registry holds the forget
    whole (committed, purges finished at the next open) or not at all."""
    from engine.forget import CRASH_ENV
    from storage.models import Job
    from tests.gui.conftest import collect, finished, of, start_client, stop_client

    monkeypatch.setenv(CRASH_ENV, step)
    client = start_client()  # the worker inherits the crash point
    monkeypatch.delenv(CRASH_ENV)
    try:
        long = client.submit("tests.gui.jobs_for_tests:gate",
                             {"path": str(tmp_path / "never"), "workspace": str(ws_root)})
        forget = client.submit("engine.forget:forget_job", {
            "workspace": str(ws_root), "model_name": "demo", "classes": ["3"],
            "operator": "bob"})
        events = collect(client, finished(long, forget), timeout=120)
    finally:
        stop_client(client)
    assert [of(events, j, "finished")[0].data["status"] for j in (long, forget)] == \
        ["failed", "failed"]
    assert [e.data["jobs"] for e in events if e.kind == "crashed"] == [[long, forget]]
    versions, forgotten, _ = _registry(ws_root)  # opening finishes interrupted purges
    assert [n for n, s in versions if s == "live"] == [live]
    assert forgotten == (["3"] if live == 2 else [])
    sha = _class_sha(ws_root, 3)
    assert (ws_root / "artifacts" / sha).exists() == (live == 1)
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        assert [j.status for j in session.query(Job).order_by(Job.id)] == ["failed"] * 2
    ws.close()


def test_a_forget_with_scrub_refuses_a_class_forgotten_while_it_waited(ws_root: Path) -> None:
    """A forget with a scrub is a long job: a plain forget of the same class, interleaved
    before its commit, leaves it nothing to do; it says so and changes nothing."""
    job = forget_job(ws_root, model_name="demo", classes=["3"], operator="alice", scrub=STEPS)
    with pytest.raises(RefusedError, match="class '3' of 'demo' is already forgotten"):
        _interleave(job, lambda: _forget(ws_root, ["3"]), records=3)  # at "forgetting"
    versions, forgotten, _ = _registry(ws_root)
    assert versions == [(1, "purged"), (2, "live")] and forgotten == ["3"]


def test_a_forget_after_an_interleaved_one_builds_on_its_version(ws_root: Path) -> None:
    job = forget_job(ws_root, model_name="demo", classes=["3"], operator="alice", scrub=STEPS)
    next(job), next(job), next(job)  # planned on v1, about to commit
    _forget(ws_root, ["5"])
    result = run_job(job)
    assert (result["from_version"], result["scrub"]["from_version"]) == (2, 3)
    versions, forgotten, _ = _registry(ws_root)
    assert [n for n, _ in versions] == [1, 2, 3, 4] and forgotten == ["3", "5"]
