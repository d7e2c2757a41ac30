"""What every screen shares: the workspace, the engine bridge and the operator's name."""

from __future__ import annotations

import getpass
from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.bridge import EngineBridge, JobHandle
from storage.workspace import Workspace


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


class AppContext(QObject):
    """The application's shared state; screens read it and listen to its signals."""

    operatorChanged = Signal(str)
    registryChanged = Signal()  # something wrote to the registry: views reload

    def __init__(self, workspace: Workspace, engine: EngineBridge,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace, self.engine = workspace, engine
        self._operator = ""

    @property
    def operator(self) -> str:
        """The name set in the window, else the OS user (as the CLI's --operator)."""
        return self._operator or os_user()

    def set_operator(self, name: str) -> None:
        name = name.strip()
        if name != self._operator:
            self._operator = name
            self.operatorChanged.emit(self.operator)

    def submit_job(self, target: str, kwargs: dict[str, Any] | None = None,
                   kind: str | None = None, lane: str | None = None) -> JobHandle:
        """Submit a job that uses the registry: it gets the ``workspace`` path (so the worker
        records it in the Job table) and the views reload when it finishes. ``lane``
        (interactive / long) defaults to the target's class (engine.job_classes)."""
        full = {"workspace": str(self.workspace.root), **(kwargs or {})}
        handle = self.engine.submit(target, full, kind, lane)
        handle.finished.connect(self.registryChanged)
        return handle
