"""Fixtures for the GUI and worker tests: one engine worker per module, nothing left behind."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator

import pytest

from engine.worker import EngineClient, EngineEvent

FAKE_PROBE = "tests.gui.jobs_for_tests:fake_device"


def start_client(probe: str = FAKE_PROBE) -> EngineClient:
    """A started client whose worker never sees a developer's UNPROMPT_DB_URL."""
    client = EngineClient(probe=probe)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("UNPROMPT_DB_URL", raising=False)
        client.start()
    return client


def stop_client(client: EngineClient) -> None:
    """Close ``client`` and check that its worker process is gone."""
    pid = client.pid
    client.close()
    assert client.state == "stopped" and client.pid is None
    assert pid not in [p.pid for p in multiprocessing.active_children()]


@pytest.fixture(scope="module")
def engine_client() -> Iterator[EngineClient]:
    """One worker (with the fast test probe) shared by a module's tests."""
    client = start_client()
    yield client
    stop_client(client)
    assert multiprocessing.active_children() == []


def collect(client: EngineClient, until: Callable[[list[EngineEvent]], bool],
            timeout: float = 30.0, seen: list[EngineEvent] | None = None
            ) -> list[EngineEvent]:
    """Poll ``client`` until ``until(events)`` holds (plain polling: these tests have no Qt).

    ``seen`` are events an earlier call collected; the result includes them.
    """
    events = list(seen or [])
    deadline = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events += client.poll()
        time.sleep(0.01)
    return events


def finished(*job_ids: int) -> Callable[[list[EngineEvent]], bool]:
    def check(events: list[EngineEvent]) -> bool:
        done = {e.job_id for e in events if e.kind == "finished"}
        return set(job_ids) <= done
    return check


def of(events: list[EngineEvent], job_id: int, kind: str) -> list[EngineEvent]:
    return [e for e in events if e.job_id == job_id and e.kind == kind]
