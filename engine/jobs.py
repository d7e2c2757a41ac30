"""The job protocol shared by the CLI, the tests and the GUI worker (docs/design.md section 9).

A job is a plain generator function. It yields ``Progress`` records, checks its
``CancelToken`` between steps (yields are the only points where cancel takes effect)
and *returns* its result, which the caller receives as ``StopIteration.value``.
``run_job`` drains a job for callers that only want the result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from storage.errors import UnpromptError


class Cancelled(UnpromptError):
    """The operator cancelled the job; nothing it was building was kept."""


@dataclass
class Progress:
    """One progress record: a fraction in [0, 1] (or None when unknown) and figures."""

    fraction: float | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "message": self.message, "data": self.data}


class CancelToken:
    """A cancel flag. Works across threads; the worker process wraps an Event the same way."""

    def __init__(self, event: Any | None = None) -> None:
        self._event = event if event is not None else threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``Cancelled`` if cancel was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the operator")


Job = Generator[Progress, None, Any]


def run_job(job: Job, on_progress: Callable[[Progress], None] | None = None) -> Any:
    """Drain ``job``, passing each record to ``on_progress``; return the job's result."""
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(record)
