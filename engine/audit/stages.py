"""Progress of a job made of stages: each sub-job's fraction maps into its stage's range."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from engine.jobs import Progress


def scaled(job: Generator[Progress, None, Any], lo: float, hi: float, label: str = ""
           ) -> Generator[Progress, None, Any]:
    """Re-yield ``job``'s records with fractions mapped into ``[lo, hi]``; return its value."""
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        fraction = None if record.fraction is None else lo + (hi - lo) * record.fraction
        message = f"{label}: {record.message}" if label else record.message
        yield Progress(fraction, message, record.data)
