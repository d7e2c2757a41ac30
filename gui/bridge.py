"""Qt signals for the engine worker: a QTimer on the main thread polls the EngineClient.

The client never blocks and has no threads of its own, so every signal is emitted on the
main thread and slots may touch widgets. ``submit`` returns a ``JobHandle`` whose signals
concern that one job (as superqt's worker signals do); the bridge's own signals cover
every job, for the status bar, the jobs panel and the activity views. ``jobs()`` is the
queue: what runs, what is suspended for an interleaved job, what waits and why.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

import gui.qt_fixes  # noqa: F401 - before any signal is emitted
from engine.worker import EngineClient, EngineEvent

POLL_MS = 40


class JobHandle(QObject):
    """The signals of one submitted job."""

    started = Signal()
    progressed = Signal(object)  # {"fraction": float | None, "message": str, "data": dict}
    succeeded = Signal(object)  # the job's result (plain data)
    failed = Signal(str, str)  # one-line message, traceback ("" for operator errors)
    cancelled = Signal(str)
    finished = Signal(str)  # succeeded / failed / cancelled
    waiting = Signal(str)  # queued: why it has not started yet (changes as the queue moves)

    def __init__(self, job_id: int, kind: str, bridge: EngineBridge) -> None:
        super().__init__()
        self.job_id, self.kind = job_id, kind
        self._bridge = bridge

    def cancel(self) -> bool:
        return self._bridge.cancel(self.job_id)


class EngineBridge(QObject):
    """Turns EngineClient events into Qt signals on the main thread."""

    jobQueued = Signal(int, str)  # job id, kind
    jobStarted = Signal(int, str)
    progressed = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    jobFinished = Signal(int, str)  # job id, status
    deviceChanged = Signal(str)
    stateChanged = Signal(str)
    workerCrashed = Signal(str)
    queueChanged = Signal()  # a job was queued, started, suspended, resumed or finished

    def __init__(self, client: EngineClient, *, owns_client: bool = True,
                 interval_ms: int = POLL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client, self._owns_client = client, owns_client
        self._handles: dict[int, JobHandle] = {}
        self._kinds: dict[int, str] = {}
        self._queue: deque[EngineEvent] = deque()
        self._progress: dict[int, dict[str, Any]] = {}
        self._reasons: dict[int, str] = {}
        self._moved = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        # Delivery runs on its own timer: a slot may open a modal dialog, and Qt never fires
        # a timer again while its own slot runs a nested event loop. Were delivery on the
        # polling timer, the worker's pipe would stop draining until the dialog closed and
        # the worker would block on it (a job frozen behind an unanswered message box).
        self._delivery = QTimer(self)
        self._delivery.setSingleShot(True)
        self._delivery.setInterval(0)
        self._delivery.timeout.connect(self._on_delivery_timeout)

    @property
    def device(self) -> str | None:
        return self._client.device

    @property
    def state(self) -> str:
        return self._client.state

    @property
    def is_polling(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        """Start the worker (if needed) and the polling timer."""
        self._client.start()
        self._timer.start()

    def submit(self, target: str, kwargs: dict[str, Any] | None = None,
               kind: str | None = None, lane: str | None = None) -> JobHandle:
        """Queue a job ('package.module:function' + plain kwargs); keep the handle's signals.

        ``lane`` (interactive / long) defaults to the target's class (engine.job_classes)."""
        job_id = self._client.submit(target, kwargs, kind, lane)
        handle = JobHandle(job_id, kind or target.rpartition(":")[2], self)
        self._handles[job_id], self._kinds[job_id] = handle, handle.kind
        if not self._timer.isActive():
            self._timer.start()
        self.jobQueued.emit(job_id, handle.kind)
        self._moved = True  # the handle's first ``waiting`` comes at the next poll,
        self.queueChanged.emit()  # once the caller has connected to it
        return handle

    def cancel(self, job_id: int) -> bool:
        return self._client.cancel(job_id)

    def jobs(self) -> list[dict[str, Any]]:
        """Every unfinished job: id, kind, lane, state (running / suspended / starting /
        queued), reason (why a queued job waits) and its last progress record."""
        return [{**job, "progress": self._progress.get(job["id"], {})}
                for job in self._client.jobs()]

    def running_jobs(self) -> list[int]:
        return self._client.running_jobs

    def close(self) -> None:
        """Stop polling and, when the bridge owns it, the worker."""
        self._timer.stop()
        self._delivery.stop()
        if self._owns_client:
            self._client.close()
        self._queue.clear()
        self._handles.clear()
        self._progress.clear()

    def _on_timer_timeout(self) -> None:
        """Drain the worker's pipe; the events are delivered by the delivery timer."""
        self._queue.extend(self._client.poll())
        if self._queue or self._moved:
            self._delivery.start()  # restarted inside a dialog's loop, it fires there too

    def _on_delivery_timeout(self) -> None:
        # A slot may open a modal dialog whose event loop delivers again: events stay in
        # one queue, so they are delivered once and in order either way.
        moved, self._moved = self._moved, False
        while self._queue:
            event = self._queue.popleft()
            moved = moved or event.kind in ("started", "finished")
            self._deliver(event)
        if moved:
            self._update_waiting()
            self.queueChanged.emit()

    def _update_waiting(self) -> None:
        """Tell each queued job's handle why it waits, when that changed."""
        for job in self._client.jobs():
            if job["state"] == "queued" and self._reasons.get(job["id"]) != job["reason"]:
                self._reasons[job["id"]] = job["reason"]
                self._with_handle(job["id"], lambda h, r=job["reason"]: h.waiting.emit(r))

    def _deliver(self, event: EngineEvent) -> None:
        handler = getattr(self, f"_deliver_{event.kind}", None)
        if handler is not None:
            handler(event.job_id, event.data)

    def _deliver_device(self, _job: None, data: dict[str, Any]) -> None:
        self.deviceChanged.emit(data["device"])

    def _deliver_state(self, _job: None, data: dict[str, Any]) -> None:
        self.stateChanged.emit(data["state"])

    def _deliver_crashed(self, _job: int | None, data: dict[str, Any]) -> None:
        self.workerCrashed.emit(data["message"])

    def _deliver_started(self, job: int, _data: dict[str, Any]) -> None:
        self.jobStarted.emit(job, self._kinds.get(job, ""))
        self._with_handle(job, lambda h: h.started.emit())

    def _deliver_progress(self, job: int, data: dict[str, Any]) -> None:
        self._progress[job] = data
        self.progressed.emit(job, data)
        self._with_handle(job, lambda h: h.progressed.emit(data))

    def _deliver_result(self, job: int, data: dict[str, Any]) -> None:
        self.succeeded.emit(job, data["value"])
        self._with_handle(job, lambda h: h.succeeded.emit(data["value"]))

    def _deliver_error(self, job: int, data: dict[str, Any]) -> None:
        self.failed.emit(job, data["message"])
        self._with_handle(job, lambda h: h.failed.emit(data["message"], data["traceback"]))

    def _deliver_cancelled(self, job: int, data: dict[str, Any]) -> None:
        self.cancelled.emit(job)
        self._with_handle(job, lambda h: h.cancelled.emit(data["message"]))

    def _deliver_finished(self, job: int, data: dict[str, Any]) -> None:
        self.jobFinished.emit(job, data["status"])
        self._kinds.pop(job, None)
        self._progress.pop(job, None)
        self._reasons.pop(job, None)
        handle = self._handles.pop(job, None)
        if handle is not None:
            handle.finished.emit(data["status"])

    def _with_handle(self, job: int, emit: Any) -> None:
        handle = self._handles.get(job)
        if handle is not None:
            emit(handle)
