"""A slot that opens a modal dialog must not stop the bridge from draining the worker's
pipe (docs/design.md section 9): Qt never fires a timer again while its own slot runs a
nested event loop, so polling and delivery run on separate timers."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEventLoop, QTimer

from engine.worker import EngineEvent
from gui.bridge import EngineBridge


class PipeClient:
    """The EngineClient's polling surface: one progress event per poll, counted."""

    device = "CPU (test)"
    state = "running"
    running_jobs: list[int] = []

    def __init__(self) -> None:
        self.polls = 0

    def poll(self) -> list[EngineEvent]:
        self.polls += 1
        return [EngineEvent("progress", 1, {"fraction": None, "message": str(self.polls)})]

    def jobs(self) -> list[dict[str, Any]]:
        return []

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_polling_and_delivery_go_on_while_a_slot_runs_a_modal_loop(qtbot) -> None:  # noqa: ANN001
    client = PipeClient()
    bridge = EngineBridge(client, interval_ms=10)  # type: ignore[arg-type]
    seen: list[str] = []
    inside: dict[str, int] = {}

    def on_progress(_job: int, data: dict[str, Any]) -> None:
        seen.append(data["message"])
        if len(seen) == 1:  # the first event opens a "dialog" for 300 ms
            polls, delivered = client.polls, len(seen)
            loop = QEventLoop()
            QTimer.singleShot(300, loop.quit)
            loop.exec()
            inside.update(polls=client.polls - polls, delivered=len(seen) - delivered)

    bridge.progressed.connect(on_progress)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bool(inside), timeout=5000)
    finally:
        bridge.close()
    assert inside["polls"] >= 5  # the pipe kept draining behind the dialog
    assert inside["delivered"] >= 5  # and the events reached their slots, once each
    assert seen == [str(i) for i in range(1, len(seen) + 1)]  # in order, none twice
