"""Small helpers for composing guard jobs (generator functions, see engine/jobs.py)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from engine.jobs import Progress
from storage.errors import UnpromptError

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


@contextmanager
def stored_artifact(ws: Any, data: bytes, kind: str) -> Iterator[str]:
    """Store ``data`` for the transaction in the ``with`` block that records what uses it; if
    that block fails, purge the bytes again (unless they were stored before), so a failed
    job leaves no artifact that nothing points to."""
    from storage.artifacts import sha256_hex
    from storage.models import Artifact

    with ws.sessions() as session:
        row = session.get(Artifact, sha256_hex(data))
        held = row is not None and row.status == "stored"
    sha = ws.artifacts.put(data, kind=kind)
    try:
        yield sha
    except BaseException:
        if not held:
            with ws.sessions.begin() as session:
                ws.artifacts.mark_for_purge(session, [sha])
            ws.artifacts.purge_marked()
        raise


def check_training_options(*, max_evals: int, max_new_tokens: int, max_known: int,
                           target_fpr: float) -> None:
    """Refuse, before any model loads, options the training would fail on half-way (the
    strength search needs at least one evaluation)."""
    for name, value in (("max-evals", max_evals), ("max-new-tokens", max_new_tokens),
                        ("max-known", max_known)):
        if not isinstance(value, int) or value < 1:
            raise UnpromptError(f"--{name} must be a whole number of at least 1, not {value!r}")
    if not 0.0 <= target_fpr < 1.0:
        raise UnpromptError(f"--target-fpr must be at least 0 and below 1, not {target_fpr}")
