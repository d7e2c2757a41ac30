"""Desktop application entry point: open the workspace, start the engine, show the window."""

from __future__ import annotations

import signal
import sys
from typing import Any

EXIT_WORKSPACE = 1  # also: the X libraries Qt needs are missing
QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_gui() -> int:
    """Run the application until its window closes; the exit code for ``main.py``."""
    from gui.xcb_check import missing_xcb_message

    if (problem := missing_xcb_message()) is not None:
        print(problem, file=sys.stderr)  # before Qt aborts with a message naming no package
        return EXIT_WORKSPACE
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("Unprompt")
    client = _engine_client()  # first: an unreachable Ray cluster leaves nothing written
    if client is None:
        return EXIT_WORKSPACE
    workspace = _open_workspace()
    if workspace is None:
        client.close()
        return EXIT_WORKSPACE
    try:
        return _run_window(app, workspace, client)
    finally:
        workspace.close()


def _open_workspace() -> Any:
    """The workspace (UNPROMPT_WORKSPACE or the default), or None after saying why not."""
    from PySide6.QtWidgets import QMessageBox

    from gui.errors import sentence
    from storage.errors import UnpromptError
    from storage.workspace import Workspace

    try:
        return Workspace.open()
    except UnpromptError as exc:
        QMessageBox.critical(None, "Unprompt cannot start",
                             f"The workspace cannot be opened. {sentence(str(exc))}\n\n"
                             "Choose another folder with --workspace DIR or "
                             "UNPROMPT_WORKSPACE.")
        return None


def _engine_client() -> Any:
    """The engine client ($UNPROMPT_ENGINE: local worker or a Ray cluster, docs/design.md
    section 12), or None after saying why it cannot be reached."""
    from PySide6.QtWidgets import QMessageBox

    from engine.backend import make_client
    from gui.errors import sentence
    from storage.errors import UnpromptError

    try:
        return make_client()
    except UnpromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        QMessageBox.critical(None, "Unprompt cannot start",
                             f"The engine cannot be reached. {sentence(str(exc))}")
        return None


def _run_window(app: Any, workspace: Any, client: Any) -> int:
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.errors import install_excepthook
    from gui.main_window import MainWindow

    previous_hook = install_excepthook()
    bridge = EngineBridge(client)
    bridge.start()
    window = MainWindow(AppContext(workspace, bridge))
    window.show()
    # Ctrl+C or a TERM signal closes the application properly (the worker stops with it);
    # Python runs the handler at the engine's next poll, within ~40 ms.
    previous = {sig: signal.signal(sig, lambda *_: app.quit()) for sig in QUIT_SIGNALS}
    try:
        return app.exec()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        window.deleteLater()
        bridge.close()
        sys.excepthook = previous_hook
