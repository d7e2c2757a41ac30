"""The period report's two clocks per request (docs/design.md section 18): time from receipt
to suppression (the data unreachable) and to exact erasure (retrain-equivalent), each
against the due date. A part of section 2 of ``reports.period_pdf``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether

from reports.pdf_style import FRAME_WIDTH, grid_table, markup, p

RED, AMBER = "#b3261e", "#b36b00"


def two_clocks(f: dict[str, Any]) -> list[Flowable]:
    """A table of every request suppressed or made exact, with the summary figures."""
    rows = [r for r in f["requests"] if r.get("suppressed_at") or r.get("exact_at")]
    if not rows:
        return []
    s, e = f.get("time_to_suppression") or {}, f.get("time_to_exact") or {}
    text = (f"Suppressed: {_stats(s)}. Exact: {_stats(e)}. A request is suppressed when its "
            "data can no longer be reached in the model (prompt deletion, a guard rule), and "
            "exact when the model is what retraining without the data gives (an exact forget, "
            "or a retrain promoted).")
    table = grid_table(["Req.", "Model", "Received", "Due", "Suppressed", "Exact",
                        "Exact vs due"], [_row(r, f["period"]["as_of"]) for r in rows],
                       _widths())
    return [KeepTogether([p("Time to suppression and to exact erasure", "h2"), p(text),
                          table])]


def _stats(t: dict[str, Any]) -> str:
    if not t.get("count"):
        return "none in the period"
    return (f"{t['count']} in the period, median {t['median']:.1f} days, "
            f"worst {t['worst']:.1f} days after receipt")


def _row(r: dict[str, Any], as_of: str) -> list[Any]:
    return [f"#{r['id']}", r["model"], r["received_at"][:10], r["due_at"][:10],
            _after(r["days_to_suppression"]), _after(r["days_to_exact"]) or "waiting",
            _versus(r, as_of)]


def _after(days: float | None) -> str:
    return "" if days is None else f"{days:.1f} d"


def _versus(r: dict[str, Any], as_of: str) -> Any:
    due = _parse(r["due_at"])
    if r.get("exact_at"):
        margin = (due - _parse(r["exact_at"])).total_seconds() / 86400
        if margin >= 0:
            return f"{margin:.1f} d before"
        return markup(f"<font color='{RED}'><b>{-margin:.1f} d late</b></font>", "cell")
    left = (due - _parse(as_of)).total_seconds() / 86400
    if left < 0:
        return markup(f"<font color='{RED}'><b>not exact, {-left:.1f} d overdue</b></font>",
                      "cell")
    return markup(f"<font color='{AMBER}'>retrain due in {left:.1f} d</font>", "cell")


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _widths() -> list[float]:
    widths = [12 * mm, 24 * mm, 22 * mm, 22 * mm, 25 * mm, 22 * mm]
    return [*widths, FRAME_WIDTH - sum(widths)]
