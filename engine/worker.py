"""The engine worker process and its parent-side client (DESIGN.md section 9).

One worker process (``spawn`` context) owns the device, keeps loaded objects in a cache
dict that jobs may use, and runs jobs one at a time. A job is named by an import path
``'package.module:function'`` plus plain-data kwargs; the worker calls it with
``cancel=CancelToken(...)`` (and ``cache=`` when the function takes it), drives the
generator and sends ``EngineEvent``s back: device, started, progress, result, error,
cancelled, finished. Jobs with a ``workspace`` kwarg get a row in the Job table.

``EngineClient`` is the parent side (no Qt): it keeps the queue, hands the worker one job
at a time, cancels, polls events without blocking and restarts a crashed worker; the job
that was running is reported failed and queued jobs are kept.
"""

from __future__ import annotations

import atexit
import datetime as dt
import importlib
import inspect
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from engine.jobs import Cancelled, CancelToken
from storage.errors import UnpromptError

DEFAULT_PROBE = "engine.worker:probe_device"
PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class JobSpec:
    """What the worker runs: an import path, plain kwargs and a kind for the Job table."""

    job_id: int
    target: str
    kwargs: dict[str, Any]
    kind: str


@dataclass(frozen=True)
class MarkFailed:
    """Housekeeping for a fresh worker: the Job row its crashed predecessor left running."""

    workspace: str
    row: int
    error: str


@dataclass(frozen=True)
class EngineEvent:
    """device / state / started / progress / result / error / cancelled / finished / crashed."""

    kind: str
    job_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def to_plain(value: Any, strict: bool = True) -> Any:
    """``value`` as plain data (dict / list / str / number / bool / None).

    Scalars with ``.item()`` (numpy, torch), paths and datetimes are converted; anything
    else raises ``TypeError`` when ``strict`` and becomes its ``repr`` otherwise.
    """
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str | int) else str(k): to_plain(v, strict)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v, strict) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    try:
        item = value.item()
    except (AttributeError, TypeError, ValueError, RuntimeError):
        item = None
    if isinstance(item, PLAIN) and item is not None:
        return item
    if strict:
        raise TypeError(f"{type(value).__name__} is not plain data "
                        "(pass ids, paths, strings, numbers, lists and dicts)")
    return repr(value)


# -- inside the worker process ------------------------------------------------------------

def probe_device() -> str:
    """The device description ('CPU' or the GPU name); sets torch's thread count."""
    import torch

    from engine.device import device_description

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))
    return device_description()


def resolve_target(target: str) -> Any:
    """Import ``'package.module:function'``."""
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise UnpromptError(f"job {target!r} is not of the form 'package.module:function'")
    return getattr(importlib.import_module(module_name), name)


def worker_main(conn: Any, cancel_event: Any, probe: str) -> None:
    """Entry point of the worker process: report the device, then run jobs until told to stop."""
    _detach_from_terminal()
    try:
        device = str(resolve_target(probe)())
    except Exception as exc:  # noqa: BLE001 - a worker without a device still runs jobs
        device = f"unknown ({exc.__class__.__name__}: {exc})"
    conn.send(EngineEvent("device", data={"device": device}))
    runner = _Runner(conn, CancelToken(cancel_event), device)
    try:
        while (message := _receive(conn)) is not None:
            runner.handle(message)
    finally:
        runner.close()


def _detach_from_terminal() -> None:
    """Ctrl+C is the parent's to handle; exit with the parent; run below the GUI's priority."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(0)), daemon=True).start()
    if hasattr(os, "nice"):
        os.nice(5)


def _receive(conn: Any) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


class _Runner:
    """Runs one job at a time in the worker and keeps the cache between jobs."""

    def __init__(self, conn: Any, token: CancelToken, device: str) -> None:
        self.conn, self.token, self.device = conn, token, device
        self.cache: dict[str, Any] = {}
        self.book = _JobBook(device)

    def handle(self, message: JobSpec | MarkFailed) -> None:
        if isinstance(message, MarkFailed):
            self.book.mark_failed(message)
        else:
            self.run(message)

    def run(self, spec: JobSpec) -> None:
        started, row = time.monotonic(), None
        try:
            row = self.book.start(spec)
            self._send("started", spec, {"target": spec.target, "kind": spec.kind, "row": row})
            value = self._drive(spec)
            kind, data = "result", {"value": value}
        except Cancelled as exc:
            kind, data = "cancelled", {"message": str(exc)}
        except UnpromptError as exc:
            kind, data = "error", {"message": str(exc), "traceback": ""}
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, never fatal
            kind, data = "error", {"message": f"internal error in {spec.kind} "
                                   f"({exc.__class__.__name__}: {exc})",
                                   "traceback": traceback.format_exc()}
        status = {"result": "succeeded", "cancelled": "cancelled"}.get(kind, "failed")
        self.book.finish(row, spec, status, data)
        self._send(kind, spec, data)
        self._send("finished", spec, {"status": status, "row": row,
                                      "seconds": round(time.monotonic() - started, 3)})

    def _drive(self, spec: JobSpec) -> Any:
        function = resolve_target(spec.target)
        outcome = function(**self._kwargs(function, spec))
        if not inspect.isgenerator(outcome):
            return to_plain(outcome)
        try:
            while True:
                self.token.check()
                try:
                    record = next(outcome)
                except StopIteration as stop:
                    return to_plain(stop.value)
                self._send("progress", spec, _progress_dict(record))
        finally:
            outcome.close()

    def _kwargs(self, function: Any, spec: JobSpec) -> dict[str, Any]:
        """The job's kwargs plus ``cancel`` and ``cache`` where the function names them
        (a ``**options`` catch-all does not count: it often feeds a config)."""
        params = inspect.signature(function).parameters
        extra = {"cancel": self.token, "cache": self.cache}
        return {**spec.kwargs, **{k: v for k, v in extra.items() if k in params}}

    def _send(self, kind: str, spec: JobSpec, data: dict[str, Any]) -> None:
        self.conn.send(EngineEvent(kind, spec.job_id, data))

    def close(self) -> None:
        self.book.close()


def _progress_dict(record: Any) -> dict[str, Any]:
    """A yielded ``Progress`` (or dict, or anything else as its text) as an event payload."""
    if hasattr(record, "to_dict"):
        raw = record.to_dict()
    else:
        raw = record if isinstance(record, dict) else {"message": str(record)}
    raw = {"fraction": raw.get("fraction"), "message": raw.get("message", ""),
           "data": raw.get("data") or {}}
    return to_plain(raw, strict=False)


class _JobBook:
    """Job rows (storage.models.Job) for every job that names a workspace."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._workspaces: dict[str, Any] = {}

    def _sessions(self, path: str) -> Any:
        if path not in self._workspaces:
            from storage.workspace import Workspace

            self._workspaces[path] = Workspace.open(path)
        return self._workspaces[path].sessions

    def start(self, spec: JobSpec) -> int | None:
        path = spec.kwargs.get("workspace")
        if not path:
            return None
        from storage.models import Job, utcnow

        config = {"target": spec.target,
                  "kwargs": {k: v for k, v in spec.kwargs.items() if k != "workspace"}}
        with self._sessions(str(path)).begin() as session:
            job = Job(kind=spec.kind, config=config, seed=_seed(spec.kwargs),
                      device=self.device, status="running", started_at=utcnow())
            session.add(job)
            session.flush()
            return job.id

    def finish(self, row: int | None, spec: JobSpec, status: str, data: dict) -> None:
        if row is None:
            return
        value = data.get("value")
        result = value if isinstance(value, dict) else {"value": value}
        self._update(str(spec.kwargs["workspace"]), row, status,
                     data.get("message") if status != "succeeded" else None, result)

    def mark_failed(self, message: MarkFailed) -> None:
        self._update(message.workspace, message.row, "failed", message.error, {})

    def _update(self, path: str, row: int, status: str, error: str | None,
                result: dict[str, Any]) -> None:
        from storage.models import Job, utcnow

        try:
            with self._sessions(path).begin() as session:
                job = session.get(Job, row)
                job.status, job.error, job.finished_at = status, error, utcnow()
                job.result = result
        except Exception:  # noqa: BLE001 - bookkeeping never takes the worker down
            traceback.print_exc()

    def close(self) -> None:
        for workspace in self._workspaces.values():
            workspace.close()


def _seed(kwargs: dict[str, Any]) -> int:
    try:
        return int(kwargs.get("seed") or 0)
    except (TypeError, ValueError):
        return 0


# -- in the parent (GUI) process ----------------------------------------------------------

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
