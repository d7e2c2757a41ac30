"""Screenshots of the engine's queue (issue 22): ``python -m tests.gui.queue_screenshots [DIR]``.

A long job (a training, test job shaped like ``train_model_job``'s progress) paused for an
interleaved forget (a test job that waits), and an audit waiting behind the training; the
fast test probe, no torch. Saves jobs-queue.png (the panel over the window) and
jobs-status-bar.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
JOBS = "tests.gui.jobs_for_tests"


def _wait(app, until: Callable[[], bool], timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the screenshot state was not reached")
        app.processEvents()
        time.sleep(0.02)


def main(folder: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from engine.job_classes import INTERACTIVE
    from engine.worker import EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.main_window import MainWindow
    from storage.workspace import Workspace
    from tests.gui.demo_data import seed

    app = QApplication.instance() or QApplication(sys.argv)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "demo-workspace")
        seed(ws)
        bridge = EngineBridge(EngineClient(probe=f"{JOBS}:fake_device"))
        bridge.start()
        window = MainWindow(AppContext(ws, bridge))
        window.operator_edit.setText("alice")
        window.show()
        _wait(app, lambda: bridge.state == "idle")
        gate = Path(tmp) / "gate"
        train = bridge.submit(f"{JOBS}:fake_train", {"workspace": str(ws.root), "name": "x",
                                                     "operator": "alice", "epochs": 40,
                                                     "delay": 0.05}, kind="train")
        _wait(app, lambda: "epoch 3" in window.engine_status.job_label.text())
        bridge.submit(f"{JOBS}:gate", {"path": str(gate), "message": "measuring accuracy after"},
                      kind="forget", lane=INTERACTIVE)
        bridge.submit(f"{JOBS}:count", {"n": 1}, kind="audit")
        _wait(app, lambda: "paused" in window.engine_status.job_label.text())
        window.show_screen("Models")
        panel = window.engine_status.show_jobs()
        for _ in range(20):
            app.processEvents()
        window.statusBar().grab().save(str(folder / "jobs-status-bar.png"))
        panel.grab().save(str(folder / "jobs-queue.png"))
        print(folder / "jobs-status-bar.png", folder / "jobs-queue.png", sep="\n")
        gate.write_text("open")
        bridge.cancel(train.job_id)
        panel.close()
        window.close()
        bridge.close()
        ws.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
