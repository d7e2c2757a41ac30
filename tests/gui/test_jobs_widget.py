"""The queue in the window (issue 22): every job in flight in the status bar, the jobs
panel with what runs, what is paused, what waits and why, and Cancel for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.job_classes import INTERACTIVE
from gui.context import AppContext
from gui.jobs_widget import jobs_summary
from gui.main_window import MainWindow

JOBS = "tests.gui.jobs_for_tests"


@pytest.fixture()
def window(qtbot, engine_ctx: AppContext) -> MainWindow:  # noqa: ANN001
    win = MainWindow(engine_ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: engine_ctx.engine.state == "idle", timeout=30_000)
    return win


def _submit_three(window: MainWindow, tmp_path: Path, qtbot):  # noqa: ANN001, ANN202
    """A long job paused for an interactive one, and a long job waiting behind it."""
    bridge = window.ctx.engine
    long = bridge.submit(f"{JOBS}:gate", {"path": str(tmp_path / "outer")}, kind="train")
    quick = bridge.submit(f"{JOBS}:gate", {"path": str(tmp_path / "inner")}, kind="forget",
                          lane=INTERACTIVE)
    reasons: list[str] = []
    waiting = bridge.submit(f"{JOBS}:count", {"n": 1}, kind="audit")
    waiting.waiting.connect(reasons.append)
    with qtbot.waitSignal(quick.progressed, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: "paused" in window.engine_status.job_label.text())
    return long, quick, waiting, reasons


def test_the_status_bar_names_every_job_in_flight(window: MainWindow, tmp_path: Path,
                                                  qtbot) -> None:  # noqa: ANN001
    status = window.engine_status
    long, quick, waiting, reasons = _submit_three(window, tmp_path, qtbot)
    assert status.job_label.text() == ("train (paused): waiting for outer · "
                                       "forget: waiting for inner")
    assert status.current_job == quick.job_id and status.cancel_button.isVisible()
    assert status.jobs_button.text() == "Jobs: 2 running, 1 waiting"
    assert reasons[-1] == f"after train (job {long.job_id}): long jobs run one at a time"
    (tmp_path / "inner").write_text("open")
    qtbot.waitUntil(lambda: status.current_job == long.job_id)
    assert status.job_label.text() == "train: waiting for outer"
    (tmp_path / "outer").write_text("open")
    with qtbot.waitSignal(waiting.finished, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: status.jobs_button.text() == "Jobs: none")


def test_the_jobs_panel_shows_the_queue_and_cancels_each_job(window: MainWindow,
                                                            tmp_path: Path,
                                                            qtbot) -> None:  # noqa: ANN001
    long, quick, waiting, _ = _submit_three(window, tmp_path, qtbot)
    panel = window.engine_status.show_jobs()
    rows = [[panel.table.item(r, c).text() for c in range(4)]
            for r in range(panel.table.rowCount())]
    assert rows == [
        [f"train (job {long.job_id})", "long", "paused (an interactive job runs)",
         "waiting for outer"],
        [f"forget (job {quick.job_id})", "interactive", "running", "waiting for inner"],
        [f"audit (job {waiting.job_id})", "long", "waiting",
         f"after train (job {long.job_id}): long jobs run one at a time"]]
    with qtbot.waitSignal(waiting.finished, timeout=10_000) as dropped:
        panel.cancel_button(waiting.job_id).click()
    assert dropped.args == ["cancelled"]
    with qtbot.waitSignal(long.finished, timeout=10_000) as cancelled:
        panel.cancel_button(long.job_id).click()
        assert panel.cancel_button(long.job_id).text() == "Cancelling…"
        (tmp_path / "inner").write_text("open")  # the paused job ends when it resumes
    assert cancelled.args == ["cancelled"]
    qtbot.waitUntil(lambda: panel.table.rowCount() == 0)
    assert panel.empty.isVisible()
    panel.close()


def test_the_jobs_summary() -> None:
    assert jobs_summary([]) == "Jobs: none"
    assert jobs_summary([{"state": "queued"}]) == "Jobs: 1 waiting"
    assert jobs_summary([{"state": "running"}, {"state": "suspended"}]) == "Jobs: 2 running"
