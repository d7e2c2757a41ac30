"""Jobs seen through the main window: progress, cancel, Job rows, a crashed worker.

Uses the conftest's worker with the fast test probe, so that restarts cost no torch import.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.context import AppContext
from gui.main_window import MainWindow
from storage.models import Job

JOBS = "tests.gui.jobs_for_tests"


@pytest.fixture()
def window(qtbot, engine_ctx: AppContext, seeded: dict[str, int]) -> MainWindow:  # noqa: ANN001
    win = MainWindow(engine_ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: engine_ctx.engine.state == "idle", timeout=30_000)
    return win


def test_progress_and_cancel_in_the_status_bar(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    status, bridge = window.engine_status, window.ctx.engine
    handle = bridge.submit(f"{JOBS}:forever")
    with qtbot.waitSignal(handle.progressed, timeout=10_000):
        pass
    assert status.cancel_button.isVisible() and status.current_job == handle.job_id
    assert status.job_label.text().startswith("forever: tick")
    with qtbot.waitSignal(handle.finished, timeout=10_000) as finished:
        status.cancel_button.click()
    assert finished.args == ["cancelled"]
    assert not status.cancel_button.isVisible() and status.current_job is None


def test_a_registry_job_is_recorded_and_reloads_the_views(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    handle = window.ctx.submit_job(f"{JOBS}:count", {"n": 2})
    with qtbot.waitSignal(window.ctx.registryChanged, timeout=10_000):
        pass
    with window.ctx.workspace.sessions() as session:
        job = session.query(Job).one()
    assert (job.kind, job.status, job.result["total"]) == ("count", "succeeded", 2)
    assert job.config["kwargs"] == {"n": 2} and handle.kind == "count"


def test_a_crashed_worker_shows_a_message_and_the_next_job_runs(window: MainWindow,
                                                                qtbot) -> None:  # noqa: ANN001
    bridge = window.ctx.engine
    failed: list[str] = []
    with qtbot.waitSignal(bridge.workerCrashed, timeout=10_000) as crashed:
        failing = bridge.submit(f"{JOBS}:crash")
        failing.failed.connect(lambda message, _tb: failed.append(message))
    assert crashed.args[0].startswith("the engine worker crashed (exit code 1)")
    assert failed == [crashed.args[0]]
    qtbot.waitUntil(lambda: _message_box(window) is not None)
    box = _message_box(window)
    assert box.windowTitle() == "Engine worker crashed"
    assert "The engine worker crashed (exit code 1); the job was marked failed." in box.text()
    box.close()
    handle = bridge.submit(f"{JOBS}:count", {"n": 1})
    with qtbot.waitSignal(handle.succeeded, timeout=60_000) as result:
        pass
    assert result.args[0]["total"] == 1
    assert window.engine_status.state_label.text() in ("Engine idle", "Engine busy")


def _message_box(window: MainWindow) -> QMessageBox | None:
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    return boxes[0] if boxes else None
