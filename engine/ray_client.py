"""The engine's jobs on a Ray cluster (docs/design.md section 12): no Qt, no torch here.

``RayEngineClient`` has the ``EngineClient`` API (``start``, ``submit``, ``cancel``,
``poll``, ``close``, ``jobs``...) and the same events, so the GUI cannot tell the two
apart. Each job runs in its own Ray actor (``JobActor``) through the local worker's own
``_Runner``: the same Job rows, progress, results, errors and cancel. The actor keeps its
events in a list that ``poll()`` collects without blocking (one outstanding ``take`` per
job). An actor that dies mid-job (its node lost, its process killed) is reported as the
local worker's crash is: ``error`` + ``finished`` (failed), its Job row marked failed here,
so the job can be rerun. Ray schedules the jobs: several may run at once on a cluster.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import socket
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from engine.job_classes import check_class, job_class
from engine.ray_resources import job_options
from engine.worker import DEFAULT_PROBE, EngineEvent, JobSpec, MarkFailed, to_plain
from storage.errors import UnpromptError


class _Pipe:
    """Stands in for the worker's pipe inside an actor: events wait here to be taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[EngineEvent] = []

    def send(self, event: EngineEvent) -> None:
        with self._lock:
            self._events.append(event)

    def poll(self) -> bool:
        return False  # nothing is ever interleaved: Ray runs other jobs in other actors

    def take(self) -> list[EngineEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events


class JobActor:
    """Runs one job inside a Ray worker process (threaded: ``take`` and ``cancel`` are
    served while ``run`` works)."""

    def __init__(self) -> None:
        self._pipe, self._cancel = _Pipe(), threading.Event()

    def run(self, spec: JobSpec, probe: str) -> bool:
        from engine.jobs import CancelToken
        from engine.worker import _Runner, resolve_target

        try:
            device = str(resolve_target(probe)())
        except Exception as exc:  # noqa: BLE001 - as in the local worker
            device = f"unknown ({exc.__class__.__name__}: {exc})"
        runner = _Runner(self._pipe, {spec.lane: CancelToken(self._cancel)}, device)
        try:
            runner.run(spec)
        finally:
            runner.close()
        return True

    def take(self) -> list[EngineEvent]:
        return self._pipe.take()

    def cancel(self) -> None:
        self._cancel.set()

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Flight:
    """A submitted job: its actor, the outstanding ``take`` and what we learnt so far."""

    spec: JobSpec
    actor: Any
    take: Any
    run: Any
    started: bool = False
    row: int | None = None


def connect(address: str) -> dict[str, float]:
    """Join the Ray cluster at ``address`` (``ray://HOST:PORT``, ``HOST:PORT`` or ``auto``)
    unless this process already has; its resources. UnpromptError naming the address when
    it cannot be reached or Ray is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise UnpromptError("the Ray engine needs the 'ray' package "
                            "(pip install 'unprompt[ray]')") from exc
    if not ray.is_initialized():
        try:
            _knock(address)
            with warnings.catch_warnings():  # Ray's own timeout warning: we say it once
                warnings.simplefilter("ignore")
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, grpc...
            raise UnpromptError(f"cannot reach the Ray cluster at {address} "
                                f"({_first_line(exc)})") from None
    return dict(ray.cluster_resources())


def _knock(address: str, timeout: float = 5.0) -> None:
    """Fail fast (OSError) when nothing listens at a ``ray://HOST:PORT`` address: Ray's
    client otherwise retries for about 30 seconds."""
    if not address.startswith("ray://"):
        return
    host, _, port = address[len("ray://"):].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("the address must be ray://HOST:PORT")
    socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__


class RayEngineClient:
    """``EngineClient``'s API over a Ray cluster; ``poll()`` never blocks."""

    def __init__(self, address: str, probe: str = DEFAULT_PROBE) -> None:
        self.address, self._probe = address, probe
        self._ids = itertools.count(1)
        self._flights: dict[int, _Flight] = {}
        self._events: list[EngineEvent] = []
        self._actor_class: Any = None
        self._gpus = 0.0
        self.device: str | None = None
        self.state = "stopped"
        atexit.register(self.close)

    # public API --------------------------------------------------------------------------
    def start(self) -> None:
        """Join the cluster (UnpromptError naming the address when it cannot be reached)."""
        if self._actor_class is not None:
            return
        import ray

        self._set_state("starting")
        try:
            resources = connect(self.address)
        except UnpromptError:
            self._set_state("failed")
            raise
        self._gpus = resources.get("GPU", 0.0)
        self._actor_class = ray.remote(max_concurrency=4)(JobActor)
        self.device = (f"Ray cluster at {self.address} ({int(resources.get('CPU', 0))} CPUs, "
                       f"{int(self._gpus)} GPUs)")
        self._emit("device", device=self.device)
        self._set_state("busy" if self._flights else "idle")

    def submit(self, target: str, kwargs: dict[str, Any] | None = None,
               kind: str | None = None, lane: str | None = None) -> int:
        """Run ``target`` (``'package.module:function'``, plain kwargs) in a Ray actor."""
        if ":" not in target:
            raise ValueError(f"job target {target!r} must be 'package.module:function'")
        plain = to_plain(dict(kwargs or {}))
        spec = JobSpec(next(self._ids), target, plain, kind or target.rpartition(":")[2],
                       check_class(lane) if lane else job_class(target, plain))
        self.start()
        options = job_options(spec.kwargs, spec.lane, self._gpus)  # a GPU job asks for a GPU
        actor = self._actor_class.options(**options).remote()
        self._flights[spec.job_id] = _Flight(spec, actor, actor.take.remote(),
                                             actor.run.remote(spec, self._probe))
        self._set_state("busy")
        return spec.job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel a job at its next yield (one not started yet is cancelled as it starts)."""
        flight = self._flights.get(job_id)
        if flight is None:
            return False
        flight.actor.cancel.remote()
        return True

    def poll(self, max_events: int = 500) -> list[EngineEvent]:
        """Events since the last call, collected from the actors without waiting."""
        if self._flights:
            self._collect()
        events, self._events = self._events, []
        return events

    @property
    def running_job(self) -> int | None:
        running = self.running_jobs
        return running[-1] if running else None

    @property
    def running_jobs(self) -> list[int]:
        return [i for i, flight in self._flights.items() if flight.started]

    @property
    def queued_jobs(self) -> list[int]:
        return [i for i, flight in self._flights.items() if not flight.started]

    def jobs(self) -> list[dict[str, Any]]:
        """Every job not yet finished: running, or starting while Ray finds it a worker."""
        return [{"id": i, "kind": f.spec.kind, "lane": f.spec.lane,
                 "state": "running" if f.started else "starting",
                 "reason": "" if f.started else "waiting for a Ray worker",
                 "target": f.spec.target} for i, f in self._flights.items()]

    @property
    def pid(self) -> int | None:
        return None  # the jobs run in Ray's worker processes

    def close(self, timeout: float = 5.0) -> None:
        """Cancel the jobs in flight and let their actors go; idempotent. The cluster (and
        the connection, which may be shared) stays."""
        atexit.unregister(self.close)
        for flight in list(self._flights.values()):
            self._stop(flight, timeout)
        self._flights.clear()
        self._set_state("stopped")

    # internals ---------------------------------------------------------------------------
    def _collect(self) -> None:
        import ray

        takes = {f.take: f for f in self._flights.values()}
        ready, _ = ray.wait(list(takes), num_returns=len(takes), timeout=0)
        for ref in ready:
            flight = takes[ref]
            try:
                events = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self._on_actor_died(flight, exc)
                continue
            for event in events:
                self._absorb(flight, event)
            if flight.spec.job_id in self._flights:
                flight.take = flight.actor.take.remote()
        if not self._flights:
            self._set_state("idle")

    def _absorb(self, flight: _Flight, event: EngineEvent) -> None:
        self._events.append(event)
        if event.kind == "started":
            flight.started, flight.row = True, event.data.get("row")
        elif event.kind == "finished":
            self._flights.pop(flight.spec.job_id, None)

    def _on_actor_died(self, flight: _Flight, exc: BaseException) -> None:
        """The Ray worker running the job is gone: report it failed, mark its Job row."""
        spec = flight.spec
        message = f"{death_reason(exc, spec.kind)}; the job was marked failed"
        self._flights.pop(spec.job_id, None)
        workspace = spec.kwargs.get("workspace")
        if workspace and flight.row is not None:
            _mark_failed_here(MarkFailed(str(workspace), flight.row, message))
        self._emit("error", spec.job_id, message=message, traceback="")
        self._emit("finished", spec.job_id, status="failed", row=flight.row, seconds=None)
        self._emit("crashed", spec.job_id, message=message, exitcode=None, jobs=[spec.job_id])

    def _stop(self, flight: _Flight, timeout: float) -> None:
        import ray

        try:
            flight.actor.cancel.remote()
            ray.wait([flight.run], timeout=timeout)
        finally:
            ray.kill(flight.actor)

    def _emit(self, kind: str, job_id: int | None = None, **data: Any) -> None:
        self._events.append(EngineEvent(kind, job_id, data))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit("state", state=state)


def death_reason(exc: BaseException, kind: str) -> str:
    """Why an actor is gone, in a line: a cluster without this Unprompt (its workers cannot
    import the engine) is named as such, anything else is a dead worker."""
    missing = re.search(r"No module named '([\w.]+)'", str(exc))
    if missing:
        return (f"the Ray cluster's workers cannot import {missing.group(1)}: install this "
                "version of Unprompt on every node")
    return f"the Ray worker running {kind} died ({exc.__class__.__name__})"


def _mark_failed_here(message: MarkFailed) -> None:
    from engine.job_book import JobBook

    book = JobBook(device="")
    try:
        book.mark_failed(message)
    finally:
        book.close()
