"""The parent-side client of the engine worker (docs/design.md section 9): no Qt, no torch.

``EngineClient`` keeps the queue, hands the worker (``engine.worker.worker_main``) at most
one long job and one interactive job at a time (the worker interleaves the interactive one
between the long one's steps; ``engine.job_classes``), cancels either, polls events without
blocking and restarts a crashed worker: every job that was in flight is reported failed and
queued jobs are kept.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing as mp
from collections import deque
from typing import Any

from engine.job_classes import INTERACTIVE, LONG, check_class, job_class
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
    is reported (events ``error`` + ``finished`` for each job in flight, then ``crashed``)
    and restarted; after ``max_failed_starts`` deaths before start-up it stays stopped.
    """

    def __init__(self, probe: str = DEFAULT_PROBE, max_failed_starts: int = 3) -> None:
        self._ctx = mp.get_context("spawn")
        self._probe, self._max_failed_starts = probe, max_failed_starts
        self._ids = itertools.count(1)
        self._pending: deque[JobSpec] = deque()
        self._housekeeping: list[MarkFailed] = []
        self._sent_housekeeping: list[MarkFailed] = []
        self._events: list[EngineEvent] = []
        self._process: Any = None
        self._conn: Any = None
        self._cancel: dict[str, Any] = {}
        self._lanes: dict[str, JobSpec | None] = {LONG: None, INTERACTIVE: None}
        self._started: set[int] = set()
        self._rows: dict[int, int | None] = {}
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
        self._cancel = {LONG: self._ctx.Event(), INTERACTIVE: self._ctx.Event()}
        self._conn, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=worker_main, name="unprompt-engine",
                                          args=(child, self._cancel, self._probe))
        self._process.start()
        child.close()
        for message in self._housekeeping:
            self._conn.send(message)
        self._sent_housekeeping, self._housekeeping = self._housekeeping, []
        if self.state != "restarting":
            self._set_state("starting")

    def submit(self, target: str, kwargs: dict[str, Any] | None = None,
               kind: str | None = None, lane: str | None = None) -> int:
        """Queue ``target`` (``'package.module:function'``) with plain kwargs; return its id.

        ``lane`` (``interactive`` / ``long``) defaults to ``engine.job_classes.job_class``."""
        if ":" not in target:
            raise ValueError(f"job target {target!r} must be 'package.module:function'")
        plain = to_plain(dict(kwargs or {}))
        spec = JobSpec(next(self._ids), target, plain, kind or target.rpartition(":")[2],
                       check_class(lane) if lane else job_class(target, plain))
        self._pending.append(spec)
        if self.state == "failed":
            self._give_up()
        elif self._process is None:
            self.start()
        self._dispatch()
        return spec.job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel a job in flight (at its next yield; a suspended long job when it resumes)
        or drop a queued one."""
        for lane, spec in self._lanes.items():
            if spec is not None and spec.job_id == job_id:
                self._cancel[lane].set()
                return True
        for spec in list(self._pending):
            if spec.job_id == job_id:
                self._pending.remove(spec)
                self._emit("cancelled", job_id, message="cancelled before it started")
                self._emit("finished", job_id, status="cancelled", row=None, seconds=0.0)
                return True
        return False

    def poll(self, max_events: int = 500) -> list[EngineEvent]:
        """Events since the last call; restarts a dead worker; hands out the next jobs."""
        if self._drain(max_events) and self._process is not None \
                and self._process.exitcode is not None:
            self._on_worker_died(self._process.exitcode)
        self._dispatch()
        events, self._events = self._events, []
        return events

    @property
    def running_job(self) -> int | None:
        """The job the worker is running now: an interleaved one before a long one."""
        running = self.running_jobs
        return running[-1] if running else None

    @property
    def running_jobs(self) -> list[int]:
        """Jobs in flight: the long one first, then the interleaved interactive one."""
        return [spec.job_id for spec in self._lanes.values() if spec is not None]

    @property
    def queued_jobs(self) -> list[int]:
        return [spec.job_id for spec in self._pending]

    def jobs(self) -> list[dict[str, Any]]:
        """Every job not yet finished, for a queue view: id, kind, lane, state
        (running / suspended / starting / queued) and, for a waiting one, why it waits."""
        rows = [self._row(spec, self._flight_state(spec), "")
                for spec in self._lanes.values() if spec is not None]
        return rows + [self._row(spec, "queued", self._why_waiting(spec))
                       for spec in self._pending]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (cancelling its jobs) and wait for it; idempotent."""
        atexit.unregister(self.close)
        if self._process is None:
            self._mark_failed_here(self._housekeeping)
            self._housekeeping = []
            self._set_state("stopped")
            return
        for event in self._cancel.values():
            event.set()
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
        if self._process.exitcode != 0:  # it may have died before reading its housekeeping
            self._mark_failed_here(self._sent_housekeeping + self._housekeeping)
        self._release_process()
        self._set_state("stopped")

    @staticmethod
    def _mark_failed_here(messages: list[MarkFailed]) -> None:
        """Mark in this process the Job rows no worker is left to mark failed."""
        if not messages:
            return
        from engine.job_book import JobBook

        book = JobBook(device="")
        try:
            for message in messages:
                book.mark_failed(message)
        finally:
            book.close()

    # internals ---------------------------------------------------------------------------
    @staticmethod
    def _row(spec: JobSpec, state: str, reason: str) -> dict[str, Any]:
        return {"id": spec.job_id, "kind": spec.kind, "lane": spec.lane, "state": state,
                "reason": reason, "target": spec.target}

    def _flight_state(self, spec: JobSpec) -> str:
        if spec.job_id not in self._started:
            return "starting"
        other = self._lanes[INTERACTIVE]
        if spec.lane == LONG and other is not None and other.job_id in self._started:
            return "suspended"
        return "running"

    def _why_waiting(self, spec: JobSpec) -> str:
        if self.state in ("stopped", "starting", "restarting"):
            return "the engine is starting"
        ahead = self._lanes[spec.lane] or next(
            (s for s in self._pending if s.lane == spec.lane and s is not spec), None)
        if spec.lane == LONG and ahead is None:
            ahead = self._lanes[INTERACTIVE]
        if ahead is None:
            return "next"
        what = f"{ahead.kind} (job {ahead.job_id})"
        if spec.lane == LONG:
            return f"after {what}: long jobs run one at a time"
        return f"after {what}"

    def _emit(self, kind: str, job_id: int | None = None, **data: Any) -> None:
        self._events.append(EngineEvent(kind, job_id, data))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit("state", state=state)

    def _busy(self) -> bool:
        return any(spec is not None for spec in self._lanes.values())

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
            self._set_state("busy" if self._busy() else "idle")
        elif event.kind == "started":
            self._started.add(event.job_id)
            self._rows[event.job_id] = event.data.get("row")
        elif event.kind == "finished":
            for lane, spec in self._lanes.items():
                if spec is not None and spec.job_id == event.job_id:
                    self._lanes[lane] = None
            self._started.discard(event.job_id)
            self._rows.pop(event.job_id, None)
            if not self._busy():
                self._set_state("idle")

    def _dispatch(self) -> None:
        """Send the first queued job of each free lane: an interactive job whenever no
        other interactive job is in flight, a long job only when the worker is idle."""
        if self.state not in ("idle", "busy"):
            return
        for spec in list(self._pending):
            free = self._lanes[spec.lane] is None and (
                spec.lane == INTERACTIVE or self._lanes[INTERACTIVE] is None)
            if free and not self._send(spec):
                return
            if self._lanes[LONG] is not None and self._lanes[INTERACTIVE] is not None:
                return

    def _send(self, spec: JobSpec) -> bool:
        self._cancel[spec.lane].clear()
        try:
            self._conn.send(spec)
        except OSError:  # the worker just died: the next poll restarts it, the job waits
            return False
        self._pending.remove(spec)
        self._lanes[spec.lane] = spec
        self._set_state("busy")
        return True

    def _on_worker_died(self, code: int) -> None:
        message = f"the engine worker crashed (exit code {code})"
        if self.state in ("starting", "restarting"):
            self._failed_starts += 1
        self._last_crash = message
        in_flight = [spec for spec in self._lanes.values() if spec is not None]
        if in_flight:
            message += ("; the job was marked failed" if len(in_flight) == 1 else
                        f"; the {len(in_flight)} jobs in flight were marked failed")
        for spec in in_flight:
            self._fail_in_flight(spec, message)
        self._emit("crashed", in_flight[-1].job_id if in_flight else None, message=message,
                   exitcode=code, jobs=[spec.job_id for spec in in_flight])
        self._lanes = {LONG: None, INTERACTIVE: None}
        self._housekeeping[:0] = self._sent_housekeeping  # the dead worker may not have read it
        self._sent_housekeeping = []
        self._started.clear()
        self._rows.clear()
        self._release_process()
        if self._failed_starts >= self._max_failed_starts:
            self._set_state("failed")
            self._give_up()
        else:
            self._set_state("restarting")
            self.start()

    def _fail_in_flight(self, spec: JobSpec, message: str) -> None:
        """Report a job the dead worker was running (or had suspended) as failed; the next
        worker marks its Job row failed."""
        row = self._rows.get(spec.job_id)
        self._emit("error", spec.job_id, message=message, traceback="")
        self._emit("finished", spec.job_id, status="failed", row=row, seconds=None)
        workspace = spec.kwargs.get("workspace")
        if workspace and row is not None:
            self._housekeeping.append(MarkFailed(str(workspace), row, message))

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
        self._process, self._conn, self._cancel = None, None, {}
