"""The main window with the real device probe: the status bar, navigation and ``run_gui``."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import engine.worker
from engine.worker import EngineClient
from gui.context import AppContext
from gui.main_window import SCREENS, MainWindow
from tests.gui.conftest import FAKE_PROBE

# The real device probe: it also sets the worker's torch threads for a small machine.
WORKER_PROBE = engine.worker.DEFAULT_PROBE


@pytest.fixture()
def window(qtbot, engine_ctx: AppContext, seeded: dict[str, int]) -> MainWindow:  # noqa: ANN001
    win = MainWindow(engine_ctx)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: engine_ctx.engine.state == "idle", timeout=60_000)
    return win


def test_status_bar_shows_the_device_after_start_up(window: MainWindow) -> None:
    status = window.engine_status
    device = window.ctx.engine.device
    assert device and not device.startswith("unknown")  # 'CPU' or the GPU's name
    assert status.device_label.text() == f"Device: {device}"
    assert status.state_label.text() == "Engine idle"
    assert not status.progress.isVisible() and not status.cancel_button.isVisible()


def test_every_screen_is_reachable(window: MainWindow) -> None:
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == \
        [name for name, _ in SCREENS]
    assert window.stack.currentWidget() is window.screen("Requests")
    for row, (name, _) in enumerate(SCREENS):
        window.nav.setCurrentRow(row)
        screen = window.stack.currentWidget()
        assert screen is window.screen(name) and screen.title and screen.description


def test_run_gui_explains_a_bad_workspace(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    from gui.app import EXIT_WORKSPACE, run_gui

    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("UNPROMPT_WORKSPACE", str(tmp_path / "a-file"))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, title, text: shown.append(text))
    assert run_gui() == EXIT_WORKSPACE
    assert "is a file, not a folder" in shown[0]


def test_run_gui_opens_the_window_and_stops_its_worker(monkeypatch: pytest.MonkeyPatch,
                                                       workspace_dir: Path, qtbot) -> None:  # noqa: ANN001
    from gui.app import run_gui

    monkeypatch.setenv("UNPROMPT_WORKSPACE", str(workspace_dir))
    monkeypatch.setattr(engine.worker, "EngineClient",
                        lambda: EngineClient(probe=FAKE_PROBE))
    seen: list[str] = []

    def close_when_ready() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].ctx.engine.state == "idle":
            seen.append(windows[0].engine_status.device_label.text())
            windows[0].close()
        else:
            QTimer.singleShot(50, close_when_ready)

    QTimer.singleShot(50, close_when_ready)
    assert run_gui() == 0
    assert seen == ["Device: CPU (test probe)"]
    assert len(multiprocessing.active_children()) == 1  # only this module's worker
