"""Blocking calls inside a job, off the job's thread, with progress while they run (issue 22).

A job reaches a progress point (a ``yield``) only between its own steps. Some steps are one
blocking library call that may take many seconds: loading a language model with
``from_pretrained``, one greedy generation. ``in_background`` runs such a call in a daemon
thread and yields a Progress record every ``POLL_S`` seconds until it ends, so the engine
worker can run an interactive job (a forget) at one of those points, and cancel takes
effect there too. The call's exception is raised in the job, as if the job had made the
call itself. A job cancelled meanwhile stops waiting at once; the thread finishes on its
own and its result is dropped (``Task`` lets a caller collect it later instead).

While a background call runs, the interpreter's thread switch interval is 0.5 ms instead of
5 ms (``SWITCH_S``): a load that runs pure-Python loops (SmolLM2's GGUF tokenizer) would
otherwise make the interleaved job wait up to 5 ms each time it takes the GIL back after a
database or file call; measured on 2 CPU cores, a forget during the load took 8.2 s at
5 ms and at most 1.3 s at 0.5 ms (the load itself 23.6 s against 24.4 s). The interval
only matters while two threads want the GIL, that is while a job is interleaved.

A call that can stop between its own small steps takes a ``Gate`` and calls
``gate.checkpoint()`` there: while the job is suspended at a progress point (an interleaved
job runs) the call pauses at its next checkpoint, so the two do not share the CPU; once the
job is cancelled or fails, the call stops at its next checkpoint with ``Abandoned``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from engine.jobs import Progress

T = TypeVar("T")
POLL_S = 0.25  # seconds between two progress points while a background call runs
SWITCH_S = 0.0005  # the thread switch interval while a background call runs


class Abandoned(Exception):  # noqa: N818 - not an error: the job stopped waiting
    """Raised at a checkpoint of a call whose job was cancelled or failed meanwhile."""


class Gate:
    """Pauses a background call at its checkpoints while its job is suspended."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.abandoned = False
        self.paused_s = 0.0  # time the call spent waiting at its checkpoints

    def checkpoint(self) -> None:
        """In the background call: wait while the job is suspended; stop once abandoned."""
        if not self._open.is_set():
            started = time.perf_counter()
            self._open.wait()
            self.paused_s += time.perf_counter() - started
        if self.abandoned:
            raise Abandoned("the job no longer waits for this call")

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def abandon(self) -> None:
        self.abandoned = True
        self._open.set()


class Stopwatch:
    """Seconds a call has run, less the time it spent paused at its gate's checkpoints."""

    def __init__(self, gate: Gate | None = None) -> None:
        self.gate, self.started = gate, time.perf_counter()
        self.paused_before = gate.paused_s if gate is not None else 0.0

    def seconds(self) -> float:
        paused = self.gate.paused_s - self.paused_before if self.gate is not None else 0.0
        return time.perf_counter() - self.started - paused


class _SwitchInterval:
    """The short switch interval while at least one background call runs."""

    def __init__(self) -> None:
        self._lock, self._running, self._saved = threading.Lock(), 0, sys.getswitchinterval()

    def enter(self) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(SWITCH_S, self._saved))
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


_SWITCH = _SwitchInterval()


class Task(Generic[T]):
    """A call running in a daemon thread; its value or exception once it is done."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._call, self._done = call, threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"unprompt: {name}", daemon=True)
        _SWITCH.enter()
        self.thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to the job that waits
            self._error = exc
        finally:
            _SWITCH.leave()
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the call has ended (waiting at most ``timeout`` seconds)."""
        return self._done.wait(timeout)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> T:
        """The call's value, or its exception raised here (only once it is done)."""
        if not self._done.is_set():
            raise RuntimeError("the background call has not ended yet")
        if self._error is not None:
            raise self._error
        return self._value


def waited(task: Task[T], progress: Callable[[float], Progress], gate: Gate | None = None,
           interval: float = POLL_S) -> Generator[Progress, None, T]:
    """Job: yield ``progress(seconds waited)`` every ``interval`` s until ``task`` ends; its
    value. Leaving early (cancel, an error) abandons ``gate``'s call."""
    started = time.monotonic()
    try:
        while not task.wait(interval):
            if gate is not None:
                gate.pause()
            yield progress(time.monotonic() - started)
            if gate is not None:
                gate.resume()
    except BaseException:
        if gate is not None:
            gate.abandon()
        raise
    return task.result()


def in_background(call: Callable[[], T], progress: Callable[[float], Progress],
                  gate: Gate | None = None, interval: float = POLL_S
                  ) -> Generator[Progress, None, T]:
    """Job: run ``call`` in a daemon thread, yielding progress until it ends; its value."""
    name = getattr(call, "__name__", "call")
    return (yield from waited(Task(call, name), progress, gate, interval))


def still(record: Progress) -> Callable[[float], Progress]:
    """The same progress record however long the call has run (a step of a counted loop)."""
    return lambda _seconds: record


def loading(what: str, fraction: float | None = None) -> Callable[[float], Progress]:
    """The progress of a load: ``loading WHAT (N s)``."""
    return lambda seconds: Progress(fraction, f"loading {what} ({seconds:.0f} s)",
                                    {"waited_s": round(seconds, 1)})
