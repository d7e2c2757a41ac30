"""Small helpers for composing guard jobs (generator functions, see engine/jobs.py)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from engine.jobs import Progress

T = TypeVar("T")


def scaled(job: Generator[Progress, None, T], lo: float, hi: float,
           prefix: str = "") -> Generator[Progress, None, T]:
    """Re-yield a sub-job's progress with its fraction mapped into ``[lo, hi]``."""
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        fraction = None if record.fraction is None else lo + (hi - lo) * record.fraction
        yield Progress(fraction, prefix + record.message, record.data)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rate(flags: list[bool]) -> float | None:
    """Share of True values; None when there are none to count."""
    return sum(flags) / len(flags) if flags else None


def rounded(data: Any, digits: int = 6) -> Any:
    """Floats rounded throughout a JSON-like structure (for stable, readable output)."""
    if isinstance(data, float):
        return round(data, digits)
    if isinstance(data, dict):
        return {k: rounded(v, digits) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [rounded(v, digits) for v in data]
    return data
