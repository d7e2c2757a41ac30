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
def engine_client(request: pytest.FixtureRequest) -> Iterator[EngineClient]:
    """One worker shared by a module's tests: the fast test probe, or the module's
    ``WORKER_PROBE`` (the real device probe imports torch in the worker)."""
    client = start_client(getattr(request.module, "WORKER_PROBE", FAKE_PROBE))
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


@pytest.fixture(autouse=True)
def _no_window_left_open() -> Iterator[None]:
    """Fail a test that leaves a visible top-level widget behind (as ndv does)."""
    yield
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    left = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    for widget in left:
        widget.close()
    assert left == [], f"windows left open: {left}"


@pytest.fixture()
def bridge(qtbot, engine_client: EngineClient):  # noqa: ANN001, ANN201
    """A polling bridge over the module's worker; its timer must stop at teardown."""
    from gui.bridge import EngineBridge

    bridge = EngineBridge(engine_client, owns_client=False)
    bridge.start()
    yield bridge
    bridge.close()
    assert not bridge.is_polling


@pytest.fixture()
def ctx(workspace):  # noqa: ANN001, ANN201
    """The application context with an engine that is never started (registry screens)."""
    from gui.bridge import EngineBridge
    from gui.context import AppContext

    bridge = EngineBridge(EngineClient())
    yield AppContext(workspace, bridge)
    bridge.close()


@pytest.fixture()
def engine_ctx(workspace, bridge):  # noqa: ANN001, ANN201
    """The application context with the module's running engine worker."""
    from gui.context import AppContext

    return AppContext(workspace, bridge)


@pytest.fixture()
def seeded(workspace) -> dict[str, int]:  # noqa: ANN001
    """The demo registry: two models and one request per situation (ids by situation)."""
    from tests.gui.demo_data import seed

    return seed(workspace)


@pytest.fixture()
def warnings_shown(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Warning dialogs shown, as (title, text), instead of blocking the test."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def warning(_parent: object, title: str, text: str, *_a: object) -> object:
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", warning)
    return shown
