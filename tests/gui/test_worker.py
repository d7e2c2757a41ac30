"""The engine worker process and EngineClient, without Qt (docs/design.md section 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.worker import EngineClient
from storage.models import Job
from storage.workspace import Workspace
from tests.gui.conftest import collect, finished, of, start_client, stop_client

JOBS = "tests.gui.jobs_for_tests"


def test_device_is_reported_by_the_worker(engine_client: EngineClient) -> None:
    collect(engine_client, lambda _: engine_client.state == "idle")
    assert engine_client.device == "CPU (test probe)"


def test_job_yields_progress_and_returns_its_result(engine_client: EngineClient) -> None:
    job = engine_client.submit(f"{JOBS}:count", {"n": 3})
    events = collect(engine_client, finished(job))
    kinds = [e.kind for e in events if e.job_id == job]
    assert kinds == ["started", "progress", "progress", "progress", "result", "finished"]
    assert [e.data["fraction"] for e in of(events, job, "progress")] == [1 / 3, 2 / 3, 1.0]
    assert of(events, job, "progress")[0].data["data"] == {"step": 1}
    assert of(events, job, "result")[0].data["value"]["total"] == 3
    assert of(events, job, "finished")[0].data["status"] == "succeeded"


def test_cancel_stops_a_running_job_at_its_next_yield(engine_client: EngineClient) -> None:
    job = engine_client.submit(f"{JOBS}:forever")
    collect(engine_client, lambda ev: bool(of(ev, job, "progress")))
    assert engine_client.cancel(job)
    events = collect(engine_client, finished(job))
    assert of(events, job, "cancelled")[0].data["message"] == "cancelled by the operator"
    assert of(events, job, "finished")[0].data["status"] == "cancelled"


def test_cancel_drops_a_queued_job(engine_client: EngineClient) -> None:
    running = engine_client.submit(f"{JOBS}:forever")
    queued = engine_client.submit(f"{JOBS}:count")
    assert engine_client.queued_jobs == [queued] or engine_client.running_job is None
    assert engine_client.cancel(queued)
    assert engine_client.cancel(running)
    events = collect(engine_client, finished(running, queued))
    assert of(events, queued, "started") == []
    assert of(events, queued, "finished")[0].data["status"] == "cancelled"
    assert not engine_client.cancel(queued)


def test_unprompt_error_arrives_with_its_message(engine_client: EngineClient) -> None:
    job = engine_client.submit(f"{JOBS}:refuse")
    events = collect(engine_client, finished(job))
    error = of(events, job, "error")[0].data
    assert error == {"message": "no model 'x' in this workspace", "traceback": ""}


def test_other_exceptions_give_one_line_and_a_traceback(engine_client: EngineClient) -> None:
    job = engine_client.submit(f"{JOBS}:boom")
    bad = engine_client.submit(f"{JOBS}:not_plain")
    events = collect(engine_client, finished(job, bad))
    error = of(events, job, "error")[0].data
    assert error["message"] == "internal error in boom (ValueError: bad value)"
    assert "Traceback" in error["traceback"] and "bad value" in error["traceback"]
    assert "not plain data" in of(events, bad, "error")[0].data["message"]


def test_kwargs_must_be_plain_data(engine_client: EngineClient) -> None:
    with pytest.raises(TypeError, match="not plain data"):
        engine_client.submit(f"{JOBS}:count", {"n": object()})
    with pytest.raises(ValueError, match="package.module:function"):
        engine_client.submit("no_colon")


def test_the_cache_lives_as_long_as_the_worker(engine_client: EngineClient) -> None:
    first = engine_client.submit(f"{JOBS}:remember", {"key": "m", "value": 1})
    second = engine_client.submit(f"{JOBS}:remember", {"key": "m", "value": 2})
    events = collect(engine_client, finished(first, second))
    a, b = (of(events, j, "result")[0].data["value"] for j in (first, second))
    assert a["pid"] == b["pid"] and b["before"] == 1


def test_cache_and_cancel_go_only_to_functions_that_name_them(
        engine_client: EngineClient) -> None:
    job = engine_client.submit(f"{JOBS}:options", {"epochs": 2})
    events = collect(engine_client, finished(job))
    assert of(events, job, "result")[0].data["value"] == {"options": ["epochs"]}


def test_a_crashed_worker_is_restarted_and_the_next_job_runs(
        engine_client: EngineClient) -> None:
    old_pid = engine_client.pid
    crash = engine_client.submit(f"{JOBS}:crash")
    after = engine_client.submit(f"{JOBS}:count", {"n": 1})
    events = collect(engine_client, finished(crash, after))
    message = "the engine worker crashed (exit code 1); the job was marked failed"
    assert of(events, crash, "error")[0].data["message"] == message
    assert of(events, crash, "finished")[0].data["status"] == "failed"
    assert [e.data["exitcode"] for e in events if e.kind == "crashed"] == [1]
    result = of(events, after, "result")[0].data["value"]
    assert result["pid"] != old_pid and result["pid"] == engine_client.pid
    assert [e.data["device"] for e in events if e.kind == "device"] == ["CPU (test probe)"]


def test_jobs_with_a_workspace_record_their_outcome(engine_client: EngineClient,
                                                    workspace: Workspace) -> None:
    path = str(workspace.root)
    jobs = {name: engine_client.submit(f"{JOBS}:{name}", {"workspace": path})
            for name in ("count", "refuse", "crash")}
    jobs["forever"] = engine_client.submit(f"{JOBS}:forever", {"workspace": path})
    seen = collect(engine_client, lambda ev: bool(of(ev, jobs["forever"], "progress")))
    engine_client.cancel(jobs["forever"])
    collect(engine_client, finished(*jobs.values()), seen=seen)
    rows = _rows(workspace)
    assert [(r.kind, r.status) for r in rows] == [
        ("count", "succeeded"), ("refuse", "failed"), ("crash", "failed"),
        ("forever", "cancelled")]
    assert rows[0].result["total"] == 3 and rows[0].config["kwargs"] == {}
    assert rows[0].device == "CPU (test probe)"
    assert rows[1].error == "no model 'x' in this workspace"
    assert rows[2].error.startswith("the engine worker crashed (exit code 1)")
    assert all(r.started_at and r.finished_at for r in rows)


def _rows(workspace: Workspace) -> list[Job]:
    with workspace.sessions() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def test_a_crashed_jobs_row_is_marked_failed_even_if_the_app_closes_at_once(
        workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The restarted worker is still starting when the app closes: its housekeeping (mark
    the crashed job's row failed) must not be lost with it."""
    marker = tmp_path / "slow-next-start"
    monkeypatch.setenv("UNPROMPT_TEST_MARKER", str(marker))
    client = start_client(f"{JOBS}:slow_if_marked")
    job = client.submit(f"{JOBS}:crash_marked",
                        {"marker": str(marker), "workspace": str(workspace.root)})
    collect(client, finished(job))
    client.close(timeout=0.5)
    assert [(r.kind, r.status) for r in _rows(workspace)] == [("crash_marked", "failed")]


def test_close_ends_the_worker_even_during_a_job(tmp_path: Path) -> None:
    client = start_client()
    job = client.submit(f"{JOBS}:forever")
    collect(client, lambda ev: bool(of(ev, job, "progress")))
    stop_client(client)
    assert client.pid is None


def test_a_worker_that_cannot_start_fails_its_jobs_instead_of_looping() -> None:
    client = EngineClient(probe=f"{JOBS}:crashing_probe", max_failed_starts=2)
    job = client.submit(f"{JOBS}:count")
    events = collect(client, finished(job))
    assert [e.data["exitcode"] for e in events if e.kind == "crashed"] == [3, 3]
    assert client.state == "failed"
    assert of(events, job, "error")[0].data["message"] == (
        "the engine worker cannot start (the engine worker crashed (exit code 3))")
    later = client.submit(f"{JOBS}:count")
    assert of(client.poll(), later, "finished")[0].data["status"] == "failed"
    stop_client(client)


def test_the_client_is_importable_from_both_modules() -> None:
    import engine.worker
    import engine.worker_client

    assert engine.worker.EngineClient is engine.worker_client.EngineClient
    with pytest.raises(AttributeError):
        engine.worker.NoSuchThing  # noqa: B018
