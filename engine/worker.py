"""The engine worker process (docs/design.md section 9); its client is ``engine.worker_client``.

One worker process (``spawn`` context) owns the device, keeps loaded objects in a cache
dict that jobs may use, and runs one long job at a time (``engine.job_classes``). Between
two steps of a long job it reads the pipe: an interactive job that arrived runs to its end
while the long job's generator stays suspended, then the long job resumes (issue 22), with
the random-number state it had. Each lane has its own cancel event. A job is named by an import path
``'package.module:function'`` plus plain-data kwargs; the worker calls it with
``cancel=CancelToken(...)`` (and ``cache=`` when the function takes it), drives the
generator and sends ``EngineEvent``s back: device, started, progress, result, error,
cancelled, finished. Jobs with a ``workspace`` kwarg get a row in the Job table.
``EngineClient`` is importable from here as before (loaded on first use).
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from engine.job_book import JobBook, KeptState
from engine.job_classes import LONG
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
    lane: str = LONG


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


def worker_main(conn: Any, cancel_events: dict[str, Any], probe: str) -> None:
    """Entry point of the worker process: report the device, then run jobs until told to stop.

    ``cancel_events`` holds one event per lane (``long``, ``interactive``)."""
    _detach_from_terminal()
    try:
        device = str(resolve_target(probe)())
    except Exception as exc:  # noqa: BLE001 - a worker without a device still runs jobs
        device = f"unknown ({exc.__class__.__name__}: {exc})"
    conn.send(EngineEvent("device", data={"device": device}))
    runner = _Runner(conn, {lane: CancelToken(e) for lane, e in cancel_events.items()}, device)
    try:
        while not runner.stopping and (message := _receive(conn)) is not None:
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
    """Runs a long job and the interactive jobs interleaved with it; keeps the cache."""

    def __init__(self, conn: Any, tokens: dict[str, CancelToken], device: str) -> None:
        self.conn, self.tokens, self.device = conn, tokens, device
        self.cache: dict[str, Any] = {}
        self.book = JobBook(device)
        self.stopping = False

    def handle(self, message: JobSpec | MarkFailed) -> None:
        if isinstance(message, MarkFailed):
            self.book.mark_failed(message)
        else:
            self.run(message)

    def interleave(self) -> None:
        """Between two steps of a long job: run what arrived (interactive jobs, housekeeping)
        with the long job's random state kept aside; a stop request cancels the long job."""
        while not self.stopping and self.conn.poll():
            message = _receive(self.conn)
            if message is None:
                self.stopping = True
                break
            with KeptState():
                self.handle(message)
        if self.stopping:
            raise Cancelled("the engine is stopping")

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
        token = self.tokens[spec.lane]
        try:
            while True:
                token.check()
                try:
                    record = next(outcome)
                except StopIteration as stop:
                    return to_plain(stop.value)
                self._send("progress", spec, _progress_dict(record))
                if spec.lane == LONG:
                    self.interleave()
        finally:
            outcome.close()

    def _kwargs(self, function: Any, spec: JobSpec) -> dict[str, Any]:
        """The job's kwargs plus ``cancel`` and ``cache`` where the function names them
        (a ``**options`` catch-all does not count: it often feeds a config)."""
        params = inspect.signature(function).parameters
        extra = {"cancel": self.tokens[spec.lane], "cache": self.cache}
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


def __getattr__(name: str) -> Any:
    """``engine.worker.EngineClient`` (the parent side), imported when first asked for."""
    if name == "EngineClient":
        from engine.worker_client import EngineClient

        return EngineClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
