"""The parent-side client of the engine worker (DESIGN.md section 9): no Qt, no torch.

``EngineClient`` keeps the queue, hands the worker (``engine.worker.worker_main``) one job
at a time, cancels, polls events without blocking and restarts a crashed worker; the job
that was running is reported failed and queued jobs are kept.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing as mp
from collections import deque
from typing import Any

from engine.worker import (
    DEFAULT_PROBE,
    EngineEvent,
    JobSpec,
    MarkFailed,
    to_plain,
    worker_main,
)


class EngineClient:
    """Starts the worker, queues jobs, cancels them and polls events; no Qt, no torch.

    ``poll()`` never blocks; call it from one thread (the GUI's timer). A worker that dies
    is reported (events ``error`` + ``finished`` for its job, then ``crashed``) and
    restarted; after ``max_failed_starts`` deaths before start-up it stays stopped.
    """

    def __init__(self, probe: str = DEFAULT_PROBE, max_failed_starts: int = 3) -> None:
        self._ctx = mp.get_context("spawn")
        self._probe, self._max_failed_starts = probe, max_failed_starts
        self._ids = itertools.count(1)
        self._pending: deque[JobSpec] = deque()
        self._housekeeping: list[MarkFailed] = []
        self._events: list[EngineEvent] = []
        self._process: Any = None
        self._conn: Any = None
        self._cancel: Any = None
        self._running: JobSpec | None = None
        self._running_row: int | None = None
        self._failed_starts = 0
        self._last_crash = ""
        self.device: str | None = None
        self.state = "stopped"
        atexit.register(self.close)

    # public API --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker process (returns at once; a ``device`` event follows)."""
        if self._process is not None:
            return
        self._cancel = self._ctx.Event()
        self._conn, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=worker_main, name="unprompt-engine",
                                          args=(child, self._cancel, self._probe))
        self._process.start()
        child.close()
        for message in self._housekeeping:
            self._conn.send(message)
        self._housekeeping.clear()
        if self.state != "restarting":
            self._set_state("starting")

    def submit(self, target: str, kwargs: dict[str, Any] | None = None,
               kind: str | None = None) -> int:
        """Queue ``target`` (``'package.module:function'``) with plain kwargs; return its id."""
        if ":" not in target:
            raise ValueError(f"job target {target!r} must be 'package.module:function'")
        spec = JobSpec(next(self._ids), target, to_plain(dict(kwargs or {})),
                       kind or target.rpartition(":")[2])
        self._pending.append(spec)
        if self.state == "failed":
            self._give_up()
        elif self._process is None:
            self.start()
        self._dispatch()
        return spec.job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel a running job (at its next yield) or drop a queued one."""
        if self._running is not None and self._running.job_id == job_id:
            self._cancel.set()
            return True
        for spec in list(self._pending):
            if spec.job_id == job_id:
                self._pending.remove(spec)
                self._emit("cancelled", job_id, message="cancelled before it started")
                self._emit("finished", job_id, status="cancelled", row=None, seconds=0.0)
                return True
        return False

    def poll(self, max_events: int = 500) -> list[EngineEvent]:
        """Events since the last call; restarts a dead worker; hands out the next job."""
        if self._drain(max_events) and self._process is not None \
                and self._process.exitcode is not None:
            self._on_worker_died(self._process.exitcode)
        self._dispatch()
        events, self._events = self._events, []
        return events

    @property
    def running_job(self) -> int | None:
        return self._running.job_id if self._running else None

    @property
    def queued_jobs(self) -> list[int]:
        return [spec.job_id for spec in self._pending]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (cancelling its job) and wait for it; idempotent."""
        atexit.unregister(self.close)
        if self._process is None:
            self._set_state("stopped")
            return
        if self._running is not None:
            self._cancel.set()
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout)
        if self._process.exitcode is None:
            self._process.terminate()
            self._process.join(2.0)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()
        self._release_process()
        self._set_state("stopped")

    # internals ---------------------------------------------------------------------------
    def _emit(self, kind: str, job_id: int | None = None, **data: Any) -> None:
        self._events.append(EngineEvent(kind, job_id, data))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit("state", state=state)

    def _drain(self, max_events: int) -> bool:
        """Read what the worker sent; True when nothing is left in the pipe."""
        while self._conn is not None and len(self._events) < max_events:
            try:
                if not self._conn.poll():
                    return True
                self._absorb(self._conn.recv())
            except (EOFError, OSError):
                return True
        return self._conn is None

    def _absorb(self, event: EngineEvent) -> None:
        self._events.append(event)
        if event.kind == "device":
            self.device, self._failed_starts = event.data["device"], 0
            self._set_state("busy" if self._running else "idle")
        elif event.kind == "started":
            self._running_row = event.data.get("row")
        elif event.kind == "finished" and self._running and event.job_id == self._running.job_id:
            self._running, self._running_row = None, None
            self._set_state("idle")

    def _dispatch(self) -> None:
        if self.state != "idle" or self._running is not None or not self._pending:
            return
        spec = self._pending.popleft()
        self._cancel.clear()
        try:
            self._conn.send(spec)
        except OSError:  # the worker just died: the next poll restarts it, the job waits
            self._pending.appendleft(spec)
            return
        self._running = spec
        self._set_state("busy")

    def _on_worker_died(self, code: int) -> None:
        workspace = self._running.kwargs.get("workspace") if self._running else None
        message = f"the engine worker crashed (exit code {code})"
        if self.state in ("starting", "restarting"):
            self._failed_starts += 1
        self._last_crash = message
        if self._running is not None:
            message += "; the job was marked failed"
            job_id = self._running.job_id
            self._emit("error", job_id, message=message, traceback="")
            self._emit("finished", job_id, status="failed", row=self._running_row, seconds=None)
            if workspace and self._running_row is not None:
                self._housekeeping.append(MarkFailed(str(workspace), self._running_row,
                                                     message))
        self._emit("crashed", self.running_job, message=message, exitcode=code)
        self._running, self._running_row = None, None
        self._release_process()
        if self._failed_starts >= self._max_failed_starts:
            self._set_state("failed")
            self._give_up()
        else:
            self._set_state("restarting")
            self.start()

    def _give_up(self) -> None:
        while self._pending:
            spec = self._pending.popleft()
            self._emit("error", spec.job_id, message="the engine worker cannot start "
                       f"({self._last_crash})", traceback="")
            self._emit("finished", spec.job_id, status="failed", row=None, seconds=None)

    def _release_process(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.exitcode is not None:
            self._process.close()
        self._process, self._conn, self._cancel = None, None, None
