"""What the period report accounts for, read from the registry (GDPR Art. 5(2), Art. 30).

``gather`` collects, for ``[start, end)``: the requests with any event in the period (or
still open and overdue / due within 7 days at its end), the counts per event, time from
receipt to erasure, what each model forgot, the audit of each erasure against the
operator's thresholds, the certificates issued and the state of the audit-log chain.
No Qt, no torch.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.certificate_facts import latest_audit
from reports.rule_facts import guard_audit, rule_of
from storage import auditlog
from storage.audit_checks import check_audit, check_guard_audit, figure, relearn_gap
from storage.erasure_kinds import request_kind
from storage.errors import NotFoundError
from storage.models import Certificate, ErasureRequest
from storage.requests import AT_RISK_WITHIN, OPEN_STATES
from storage.retrain import retrainable
from storage.settings import get_setting

EVENTS = (("received", "received_at"), ("approved", "approved_at"),
          ("rejected", "rejected_at"), ("executed", "executed_at"),
          ("exact", "exact_at"), ("certified", "certified_at"))


def gather(session: Session, start: dt.datetime, end: dt.datetime,
           now: dt.datetime) -> dict[str, Any]:
    """The report's facts for ``start <= t < end`` (aware UTC datetimes)."""
    as_of = min(end, now)
    thresholds = get_setting(session, "thresholds")
    certs = _certificates(session)
    rows = []
    for request in session.scalars(select(ErasureRequest).order_by(ErasureRequest.id)):
        row = _row(session, request, start, end, as_of, thresholds, certs)
        if row["in_period"] or row["overdue"] or row["at_risk"]:
            rows.append(row)
    counts = {name: sum(1 for r in rows if name in r["events_in_period"])
              for name, _ in EVENTS}
    executed = [r for r in rows if "executed" in r["events_in_period"]]
    chain = auditlog.verify(session)
    head = auditlog.head(session)
    return {
        "period": {"from": start.date().isoformat(),
                   "to": (end - dt.timedelta(days=1)).date().isoformat(),
                   "as_of": _iso(as_of)},
        "counts": counts,
        "requests": rows,
        "overdue": [r["id"] for r in rows if r["overdue"]],
        "at_risk": [r["id"] for r in rows if r["at_risk"]],
        "time_to_erasure": time_stats([r["days_to_erasure"] for r in executed]),
        "time_to_suppression": time_stats([r["days_to_suppression"] for r in executed
                                           if r["days_to_suppression"] is not None]),
        "time_to_exact": time_stats([r["days_to_exact"] for r in rows
                                     if "exact" in r["events_in_period"]]),
        "waiting_for_exact": [r["id"] for r in rows if r["exact_pending"]],
        "thresholds": thresholds,
        "log": {**chain.to_dict(), "head_seq": head.seq if head else 0},
        "certificates": [c for r in rows for c in r["certificates"]
                         if _iso(start) <= c["created_at"] < _iso(end)],
    }


def is_empty(facts: dict[str, Any]) -> bool:
    return not any(r["in_period"] for r in facts["requests"])


def time_stats(days: list[float]) -> dict[str, Any]:
    """Median, 90th percentile (nearest rank) and worst of the days to erasure."""
    if not days:
        return {"count": 0, "median": None, "p90": None, "worst": None}
    ordered = sorted(days)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"count": len(ordered), "median": round(statistics.median(ordered), 2),
            "p90": round(p90, 2), "worst": round(ordered[-1], 2)}


def _row(session: Session, r: ErasureRequest, start: dt.datetime, end: dt.datetime,
         as_of: dt.datetime, thresholds: dict[str, float],
         certs: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    events = [name for name, attr in EVENTS
              if getattr(r, attr) is not None and start <= getattr(r, attr) < end]
    open_then = r.received_at < as_of and (r.status in OPEN_STATES or _closed_after(r, as_of))
    days = ((r.executed_at - r.received_at).total_seconds() / 86400
            if r.executed_at else None)
    scope = r.scope or {}
    return {
        "id": r.id, "status": r.status, "model": scope.get("model", ""),
        "scope": _scope_text(scope), "legal_basis": r.legal_basis,
        "requested_by": r.requested_by, "approved_by": r.approved_by,
        "received_at": _iso(r.received_at), "due_at": _iso(r.due_at),
        "approved_at": _iso(r.approved_at), "rejected_at": _iso(r.rejected_at),
        "rejected_reason": r.rejected_reason, "executed_at": _iso(r.executed_at),
        "executed_by": r.executed_by, "certified_at": _iso(r.certified_at),
        "version_after": (r.result or {}).get("version"), "erasure_kind": request_kind(r),
        "days_to_erasure": None if days is None else round(days, 2),
        "late": bool(r.executed_at and r.executed_at > r.due_at),
        **_two_clocks(r, as_of),
        "events_in_period": events, "in_period": bool(events),
        "overdue": open_then and r.due_at < as_of,
        "at_risk": open_then and as_of <= r.due_at <= as_of + AT_RISK_WITHIN,
        "audit": _audit(session, r, thresholds) if r.executed_at else None,
        "certificates": certs.get(r.id, []),
    }


def _two_clocks(r: ErasureRequest, as_of: dt.datetime) -> dict[str, Any]:
    """Time to suppression and to exact erasure, against the due date (docs/design.md
    section 18): an executed request not yet exact at ``as_of`` is waiting for a retrain."""
    exact = r.exact_at if r.exact_at is not None and r.exact_at < as_of else None
    waiting = (r.suppressed_at is not None and exact is None and r.status != "rejected"
               and retrainable(r.scope))  # a topic rule has no retrain follow-up
    return {"suppressed_at": _iso(r.suppressed_at), "exact_at": _iso(exact),
            "days_to_suppression": _days(r.received_at, r.suppressed_at),
            "days_to_exact": _days(r.received_at, exact),
            "exact_late": bool(exact and exact > r.due_at) or (waiting and r.due_at < as_of),
            "exact_pending": waiting}


def _days(start: dt.datetime, end: dt.datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds() / 86400, 2)


def _closed_after(r: ErasureRequest, as_of: dt.datetime) -> bool:
    """Still open at ``as_of`` although closed today (a report on a past period)."""
    closed = r.executed_at or r.rejected_at
    return closed is not None and closed >= as_of


def _audit(session: Session, r: ErasureRequest, thresholds: dict[str, float]
           ) -> dict[str, Any] | None:
    if r.scope.get("kind") == "rule":
        return _guard_audit(session, r)
    run = latest_audit(session, r)
    if run is None:
        return None
    metrics, ref = run.metrics, run.metrics.get("reference") or {}
    checks = check_audit(metrics, thresholds)
    return {"run_id": run.id, "passed": checks["passed"], "checks": checks["checks"],
            "forget_accuracy": figure(metrics, "forget_accuracy"),
            "mia_efficacy": metrics.get("mia_efficacy"),
            "reference_mia_efficacy": ref.get("mia_efficacy"),
            "distinguishability_auc": metrics.get("forget_distinguishability_auc"),
            "relearn_gap": relearn_gap(metrics.get("relearn"), ref.get("relearn"))}


def _guard_audit(session: Session, r: ErasureRequest) -> dict[str, Any] | None:
    """The `guard eval` of the rule version in force, checked as its certificate would be."""
    try:
        run = guard_audit(session, rule_of(session, r)[1])
    except NotFoundError:  # the rule was removed
        return None
    if run is None:
        return None
    checks = check_guard_audit(run.metrics, get_setting(session, "guard_thresholds"))
    return {"run_id": run.id, "kind": "guard", "passed": checks["passed"],
            "checks": checks["checks"], "forget_accuracy": None, "mia_efficacy": None,
            "reference_mia_efficacy": None, "distinguishability_auc": None,
            "relearn_gap": None}


def _certificates(session: Session) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for c in session.scalars(select(Certificate).order_by(Certificate.created_at)):
        found.setdefault(c.request_id, []).append(
            {"certificate_id": c.id, "request": c.request_id,
             "created_at": _iso(c.created_at), "manifest_sha256": c.manifest_sha256})
    return found


def _scope_text(scope: dict[str, Any]) -> str:
    if scope.get("kind") == "rule":
        return f"rule {scope.get('rule')}"
    return "class " + ", ".join(str(c.get("name")) for c in scope.get("classes", []))


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
