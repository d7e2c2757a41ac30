"""Desktop application entry point: open the workspace, start the engine, show the window."""

from __future__ import annotations

import sys

EXIT_WORKSPACE = 1


def run_gui() -> int:
    """Run the application until its window closes; the exit code for ``main.py``."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from engine.worker import EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.errors import install_excepthook, sentence
    from gui.main_window import MainWindow
    from storage.errors import UnpromptError
    from storage.workspace import Workspace

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("Unprompt")
    try:
        workspace = Workspace.open()
    except UnpromptError as exc:
        QMessageBox.critical(None, "Unprompt cannot start",
                             f"The workspace cannot be opened. {sentence(str(exc))}\n\n"
                             "Choose another folder "
                             "with --workspace DIR or UNPROMPT_WORKSPACE.")
        return EXIT_WORKSPACE
    previous_hook = install_excepthook()
    bridge = EngineBridge(EngineClient())
    bridge.start()
    window = MainWindow(AppContext(workspace, bridge))
    window.show()
    try:
        return app.exec()
    finally:
        window.deleteLater()
        bridge.close()
        workspace.close()
        sys.excepthook = previous_hook
