"""What the Requests screen shows of each request (docs/design.md sections 3.3 and 18): the
table's columns, their tone (overdue, at risk, rejected) and the selected request's history.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from gui.formatting import days_until, local_date, local_time
from gui.table_model import Column, Record

CLOSED_DONE = ("executed", "verified", "certified")


def scope_text(scope: dict[str, Any]) -> str:
    if scope.get("kind") == "rule":
        return f"{scope.get('model')}: rule {scope.get('rule')}"
    names = ", ".join(c["name"] for c in scope.get("classes", []))
    return f"{scope.get('model')}: {names}"


def deadline_text(r: Record) -> str:
    """Where a request stands against its due date, in words."""
    if r["status"] == "rejected":
        return "Closed (rejected)"
    days = days_until(r["due_at"])
    if exact_text(r) == "waiting (retrain)":
        if days < 0:
            return f"Suppressed; exact overdue by {_days(-days)}"
        return f"Suppressed; exact due in {_days(max(days, 0))}"
    if r["status"] in CLOSED_DONE:
        return f"Met ({r['status']})"
    if r["overdue"]:
        return f"Overdue by {_days(max(1, -days))}"
    left = "due today" if days <= 0 else f"{_days(days)} left"
    return f"At risk: {left}" if r["at_risk"] else left[0].upper() + left[1:]


def exact_text(r: Record) -> str:
    """When the request became exact, or that it waits for a retrain."""
    if r.get("exact_at"):
        return local_date(r["exact_at"])
    if r.get("suppressed_at") and r["scope"].get("kind") == "rule" \
            and "subject_records" not in r["scope"]:
        return "no (guard rule)"  # weights unchanged, and no records to retrain without
    return "waiting (retrain)" if r.get("suppressed_at") else ""


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def request_tone(r: Record) -> str | None:
    if r["overdue"]:
        return "danger"
    if r["at_risk"]:
        return "warning"
    return "muted" if r["status"] == "rejected" else None


COLUMNS = [
    Column("ID", lambda r: str(r["id"]), sort=lambda r: r["id"],
           align=Qt.AlignmentFlag.AlignRight),
    Column("Status", lambda r: r["status"].capitalize(),
           tooltip=lambda r: r["rejected_reason"] or ""),
    Column("Scope", lambda r: scope_text(r["scope"])),
    Column("Received", lambda r: local_date(r["received_at"]), sort=lambda r: r["received_at"],
           tooltip=lambda r: local_time(r["received_at"])),
    Column("Due", lambda r: local_date(r["due_at"]), sort=lambda r: r["due_at"]),
    Column("Deadline", deadline_text, sort=lambda r: (not r["overdue"], not r["at_risk"],
                                                      r["due_at"]),
           emphasis=lambda r: r["overdue"] or r["at_risk"]),
    Column("Suppressed", lambda r: local_date(r.get("suppressed_at")),
           sort=lambda r: r.get("suppressed_at") or "",
           tooltip=lambda r: local_time(r.get("suppressed_at"))),
    Column("Exact", lambda r: exact_text(r), sort=lambda r: r.get("exact_at") or "",
           tooltip=lambda r: local_time(r.get("exact_at"))),
    Column("Requester", lambda r: r["requested_by"]),
    Column("Approver", lambda r: r["approved_by"] or ""),
    Column("Legal basis", lambda r: r["legal_basis"], tooltip=lambda r: r["legal_basis"]),
]


def request_details(r: Record) -> str:
    """One line under the table: the selected request's history."""
    parts = [f"Request {r['id']}: {r['status']}", f"subject hash {r['subject_hash'][:12]}…",
             f"received {local_time(r['received_at'])} by {r['requested_by']}"]
    if r["approved_by"]:
        parts.append(f"approved {local_time(r['approved_at'])} by {r['approved_by']}")
    if r["rejected_reason"]:
        parts.append(f"rejected {local_time(r['rejected_at'])}: {r['rejected_reason']}")
    if r["executed_at"]:
        parts.append(f"executed {local_time(r['executed_at'])} ({r['erasure_kind']} erasure)")
    if r.get("suppressed_at"):
        parts.append(f"suppressed {local_time(r['suppressed_at'])}")
    if r.get("exact_at"):
        parts.append(f"exact {local_time(r['exact_at'])}")
    elif r.get("suppressed_at"):
        parts.append("not exact yet: waits for a retrain of its model")
    return " · ".join(parts)
