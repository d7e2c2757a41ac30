"""Zeroth-order minimisation of a scalar function on an interval (docs/design.md section 6).

Each step estimates the derivative by two-point central differences,
``g = (f(x + mu) - f(x - mu)) / (2 mu)`` (the two points projected into ``[lo, hi]``), moves
``x <- clip(x - lr * g)`` and shrinks ``mu``. The budget counts function evaluations. The
result is the best point evaluated, so a flat or stepped objective still returns its best
observed value.

``zo_search`` is a coroutine (it yields the next ``x`` and receives ``f(x)``) so that a job can
evaluate an expensive objective with ``yield from`` and keep reporting progress; ``zo_minimize``
drives it for ordinary functions.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ZOResult:
    """The best point, its value and every evaluation in order."""

    x: float
    fx: float
    trace: list[dict[str, Any]] = field(default_factory=list)


def zo_search(x0: float, lo: float, hi: float, max_evals: int = 12, mu: float = 0.1,
              lr: float = 0.5, decay: float = 0.7) -> Generator[float, float, ZOResult]:
    """Coroutine: yields points to evaluate, receives their values, returns a ZOResult."""
    if not lo <= hi or max_evals < 1 or mu <= 0:
        raise ValueError("zo_search needs lo <= hi, max_evals >= 1 and mu > 0")
    clip = lambda v: min(max(float(v), lo), hi)  # noqa: E731
    x, trace = clip(x0), []
    while len(trace) + 2 <= max_evals:
        plus, minus = clip(x + mu), clip(x - mu)
        f_plus = yield plus
        trace.append({"x": plus, "f": float(f_plus), "role": "plus"})
        f_minus = yield minus
        trace.append({"x": minus, "f": float(f_minus), "role": "minus"})
        grad = (f_plus - f_minus) / (plus - minus) if plus > minus else 0.0
        x, mu = clip(x - lr * grad), mu * decay
    if len(trace) < max_evals:
        trace.append({"x": x, "f": float((yield x)), "role": "iterate"})
    best = min(trace, key=lambda t: (t["f"], t["x"]))
    return ZOResult(best["x"], best["f"], trace)


def zo_minimize(f: Callable[[float], float], x0: float, lo: float, hi: float,
                **options: Any) -> ZOResult:
    """Minimise ``f`` on ``[lo, hi]`` from ``x0`` (options as for ``zo_search``)."""
    search = zo_search(x0, lo, hi, **options)
    x = next(search)
    while True:
        try:
            x = search.send(f(x))
        except StopIteration as stop:
            return stop.value
