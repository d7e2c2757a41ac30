"""Interactive jobs interleaved between a long job's steps (issue 22), without Qt.

Gates (``jobs_for_tests.gate``/``release``) decide when a job moves on: no timing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.job_classes import INTERACTIVE, LONG, job_class
from engine.worker import EngineClient, EngineEvent
from storage.models import Job
from storage.workspace import Workspace
from tests.gui.conftest import collect, finished, of

JOBS = "tests.gui.jobs_for_tests"


def _index(events: list[EngineEvent], job: int, kind: str) -> int:
    return next(i for i, e in enumerate(events) if e.job_id == job and e.kind == kind)


def _rows(workspace: Workspace) -> list[tuple[str, str]]:
    with workspace.sessions() as session:
        return [(r.kind, r.status) for r in session.scalars(select(Job).order_by(Job.id))]


def test_jobs_are_classed_by_target() -> None:
    assert job_class("engine.forget:forget_job") == INTERACTIVE
    assert job_class("engine.forget:forget_job", {"scrub": 50}) == LONG
    assert job_class("engine.audit.job:audit_job") == LONG
    assert job_class("engine.guard.registry_jobs:add_rule_job") == LONG
    assert job_class("engine.guard.registry_jobs:set_rule_status") == INTERACTIVE
    assert job_class("somebody.else:job") == LONG  # never interleave an unknown job


def test_an_interactive_job_runs_while_a_long_job_is_suspended(
        engine_client: EngineClient, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    long = engine_client.submit(f"{JOBS}:gate", {"path": gate})
    quick = engine_client.submit(f"{JOBS}:count", {"n": 2}, lane=INTERACTIVE)
    events = collect(engine_client, finished(quick))
    assert of(events, long, "finished") == []  # the long job is still waiting at its gate
    assert _index(events, long, "progress") < _index(events, quick, "started")
    assert of(events, quick, "result")[0].data["value"]["pid"] == engine_client.pid
    opener = engine_client.submit(f"{JOBS}:release", {"path": gate}, lane=INTERACTIVE)
    events = collect(engine_client, finished(long, opener), seen=events)
    assert of(events, long, "finished")[0].data["status"] == "succeeded"


def test_a_long_job_waits_for_the_long_job_before_it(engine_client: EngineClient,
                                                     tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    first = engine_client.submit(f"{JOBS}:gate", {"path": gate})
    second = engine_client.submit(f"{JOBS}:count", {"n": 1})
    events = collect(engine_client, lambda ev: bool(of(ev, first, "progress")))
    queued = [j for j in engine_client.jobs() if j["id"] == second]
    assert queued[0]["state"] == "queued"
    assert queued[0]["reason"] == f"after gate (job {first}): long jobs run one at a time"
    engine_client.submit(f"{JOBS}:release", {"path": gate}, lane=INTERACTIVE)
    events = collect(engine_client, finished(first, second), seen=events)
    assert _index(events, first, "finished") < _index(events, second, "started")


def test_the_queue_shows_a_suspended_long_job_under_its_interleaved_job(
        engine_client: EngineClient, tmp_path: Path) -> None:
    outer, inner = str(tmp_path / "outer"), str(tmp_path / "inner")
    long = engine_client.submit(f"{JOBS}:gate", {"path": outer})
    quick = engine_client.submit(f"{JOBS}:gate", {"path": inner}, lane=INTERACTIVE)
    events = collect(engine_client, lambda ev: bool(of(ev, quick, "progress")))
    states = {j["id"]: (j["lane"], j["state"]) for j in engine_client.jobs()}
    assert states == {long: (LONG, "suspended"), quick: (INTERACTIVE, "running")}
    Path(inner).write_text("open")
    Path(outer).write_text("open")
    collect(engine_client, finished(long, quick), seen=events)


def test_the_long_job_draws_the_same_random_numbers_with_a_job_interleaved(
        engine_client: EngineClient) -> None:
    alone = engine_client.submit(f"{JOBS}:draws", {"n": 30})
    events = collect(engine_client, finished(alone))
    mixed = engine_client.submit(f"{JOBS}:draws", {"n": 30, "delay": 0.01})
    events = collect(engine_client, lambda ev: bool(of(ev, mixed, "progress")), seen=events)
    noise = [engine_client.submit(f"{JOBS}:scramble", lane=INTERACTIVE) for _ in range(3)]
    events = collect(engine_client, finished(mixed, *noise), seen=events)
    assert of(events, mixed, "result")[0].data["value"] == \
        of(events, alone, "result")[0].data["value"]
    assert any(_index(events, n, "finished") < _index(events, mixed, "finished")
               for n in noise)  # at least one ran inside the long job


def test_cancel_a_suspended_long_job_ends_after_the_interleaved_job(
        engine_client: EngineClient, workspace: Workspace, tmp_path: Path) -> None:
    path, outer, inner = str(workspace.root), str(tmp_path / "outer"), str(tmp_path / "in")
    long = engine_client.submit(f"{JOBS}:gate", {"path": outer, "workspace": path})
    quick = engine_client.submit(f"{JOBS}:gate", {"path": inner, "workspace": path},
                                 lane=INTERACTIVE)
    events = collect(engine_client, lambda ev: bool(of(ev, quick, "progress")))
    assert engine_client.cancel(long)
    Path(inner).write_text("open")
    events = collect(engine_client, finished(long, quick), seen=events)
    assert of(events, quick, "finished")[0].data["status"] == "succeeded"
    assert of(events, long, "finished")[0].data["status"] == "cancelled"
    assert _index(events, quick, "finished") < _index(events, long, "cancelled")
    assert _rows(workspace) == [("gate", "cancelled"), ("gate", "succeeded")]


def test_cancel_the_interleaved_job_leaves_the_long_job_running(
        engine_client: EngineClient, tmp_path: Path) -> None:
    outer, inner = str(tmp_path / "outer"), str(tmp_path / "inner")
    long = engine_client.submit(f"{JOBS}:gate", {"path": outer})
    quick = engine_client.submit(f"{JOBS}:gate", {"path": inner}, lane=INTERACTIVE)
    events = collect(engine_client, lambda ev: bool(of(ev, quick, "progress")))
    assert engine_client.cancel(quick)
    events = collect(engine_client, finished(quick), seen=events)
    assert of(events, quick, "finished")[0].data["status"] == "cancelled"
    assert engine_client.running_jobs == [long]
    Path(outer).write_text("open")
    events = collect(engine_client, finished(long), seen=events)
    assert of(events, long, "finished")[0].data["status"] == "succeeded"


def test_a_long_job_that_fails_after_an_interleaved_job_keeps_that_job_done(
        engine_client: EngineClient, workspace: Workspace, tmp_path: Path) -> None:
    path, gate = str(workspace.root), str(tmp_path / "gate")
    long = engine_client.submit(f"{JOBS}:gate", {"path": gate, "fail": True,
                                                 "workspace": path})
    opener = engine_client.submit(f"{JOBS}:release", {"path": gate, "workspace": path},
                                  lane=INTERACTIVE)
    events = collect(engine_client, finished(long, opener))
    assert of(events, opener, "finished")[0].data["status"] == "succeeded"
    assert of(events, long, "error")[0].data["message"] == \
        "the gated job failed after its gate opened"
    assert _rows(workspace) == [("gate", "failed"), ("release", "succeeded")]


def test_a_crash_during_an_interleaved_job_fails_both_jobs(
        engine_client: EngineClient, workspace: Workspace, tmp_path: Path) -> None:
    path = str(workspace.root)
    long = engine_client.submit(f"{JOBS}:gate", {"path": str(tmp_path / "never"),
                                                 "workspace": path})
    dying = engine_client.submit(f"{JOBS}:crash", {"workspace": path}, lane=INTERACTIVE)
    after = engine_client.submit(f"{JOBS}:count", {"n": 1, "workspace": path})
    events = collect(engine_client, finished(long, dying, after))
    message = "the engine worker crashed (exit code 1); the 2 jobs in flight were marked failed"
    for job in (long, dying):
        assert of(events, job, "error")[0].data["message"] == message
        assert of(events, job, "finished")[0].data["status"] == "failed"
    crashed = [e.data for e in events if e.kind == "crashed"]
    assert [(c["jobs"], c["message"]) for c in crashed] == [([long, dying], message)]
    assert _rows(workspace) == [("gate", "failed"), ("crash", "failed"),
                                ("count", "succeeded")]
