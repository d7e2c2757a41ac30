"""Desktop application entry point (the full window arrives with the GUI issue)."""

from __future__ import annotations

import sys


def run_gui() -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(sys.argv)
    label = QLabel("Unprompt")
    label.setWindowTitle("Unprompt")
    label.resize(480, 200)
    label.show()
    return app.exec()
