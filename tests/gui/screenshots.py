"""Save screenshots of the main screens: ``python -m tests.gui.screenshots [FOLDER]``.

Uses a throw-away workspace with demo data and the fast test probe (no torch needed).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
SCREENS = {"Requests": "requests", "Activity": "activity"}  # the rest: real_screenshots.py


def main(folder: Path) -> None:
    from PySide6.QtWidgets import QApplication

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
        ids = seed(ws)
        bridge = EngineBridge(EngineClient(probe="tests.gui.jobs_for_tests:fake_device"))
        bridge.start()
        window = MainWindow(AppContext(ws, bridge))
        window.operator_edit.setText("alice")
        window.show()
        _wait(app, lambda: bridge.state == "idle")
        window.screen("Activity").verify_button.click()
        window.screen("Requests").select(ids["rejected"])
        for name, stem in SCREENS.items():
            window.show_screen(name)
            app.processEvents()
            window.grab().save(str(folder / f"{stem}.png"))
            print(folder / f"{stem}.png")
        _dialog_shot(window, folder / "request-dialog.png")
        _operators_shot(window, folder / "operators.png")
        window.close()
        bridge.close()
        ws.close()


def _dialog_shot(window: object, path: Path) -> None:
    from gui.request_dialog import RequestDialog
    from storage.queries_gui import request_choices

    with window.ctx.workspace.sessions() as session:
        dialog = RequestDialog(request_choices(session), lambda _values: None,
                               operator="alice", parent=window)
    dialog.subject_edit.setText("customer 10442")
    dialog.passphrase_edit.setText("alice passphrase")
    dialog.check_class("coat")
    dialog.show()
    dialog.grab().save(str(path))
    print(path)
    dialog.close()


def _operators_shot(window: object, path: Path) -> None:
    from gui.operators_dialog import OperatorsDialog

    dialog = OperatorsDialog(window.ctx, parent=window)
    dialog.name_edit.setText("dora")
    for edit in (dialog.passphrase_edit, dialog.repeat_edit, dialog.actor_passphrase_edit):
        edit.setText("a passphrase")
    dialog.show()
    dialog.name_edit.deselect()
    dialog.grab().save(str(path))
    print(path)
    dialog.close()


def _wait(app: object, condition: object, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
