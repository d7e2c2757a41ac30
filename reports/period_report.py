"""The signed period report (issue 8): check the period, gather, render, sign, write PDF and
CSV, then a signed checkpoint of the audit log's head (reports/checkpoints.py) that names the
report and the head it states. Refuses, with one sentence and before writing anything, a
period that ends before it starts, lies in the future, or holds no request activity."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from reports import period_facts
from storage.errors import RefusedError, UnpromptError
from storage.workspace import Workspace

CSV_FIELDS = ("id", "status", "model", "scope", "legal_basis", "requested_by",
              "received_at", "due_at", "approved_at", "approved_by", "rejected_at",
              "rejected_reason", "executed_at", "executed_by", "days_to_erasure", "late",
              "suppressed_at", "days_to_suppression", "exact_at", "days_to_exact",
              "exact_late",
              "overdue", "at_risk", "erasure_kind", "version_after", "audit_run",
              "audit_passed", "certified_at", "certificate_id", "manifest_sha256")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UnpromptError(f"--{what} {text!r} is not a date (YYYY-MM-DD)") from None


def period_bounds(start: dt.date, end: dt.date, now: dt.datetime | None = None
                  ) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end + 1 day 00:00)`` in UTC, after checking the period makes sense."""
    now = now or dt.datetime.now(dt.UTC)
    if end < start:
        raise UnpromptError(f"the period ends ({end}) before it starts ({start})")
    if start > now.date():
        raise UnpromptError(f"the period starts in the future ({start}; today is "
                            f"{now.date()}); nothing has happened yet")
    begin = dt.datetime.combine(start, dt.time(), dt.UTC)
    return begin, dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)


def preview(ws: Workspace, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The report's facts (what the GUI previews); refuses an empty period."""
    now = dt.datetime.now(dt.UTC)
    begin, stop = period_bounds(start, end, now)
    with ws.sessions() as session:
        facts = period_facts.gather(session, begin, stop, now)
    if period_facts.is_empty(facts):
        raise RefusedError(f"no erasure request was received, decided, executed or "
                           f"certified between {start} and {end}; no report written")
    return facts


def write_report(ws: Workspace, start: dt.date, end: dt.date, out: str | Path, *,
                 operator: str, passphrase: bytes, csv_out: str | Path | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Write the signed PDF (and the CSV); returns the summary figures and paths."""
    from reports.key_admin import command_signing_identity
    from reports.period_pdf import render_period_pdf
    from reports.signing import _signer_label, sign_pdf, write_files

    pdf_path = _path(out, ".pdf")
    csv_path = _path(csv_out, ".csv") if csv_out else None
    for path in (pdf_path, csv_path):
        if path is not None and path.exists() and not overwrite:
            raise RefusedError(f"{path} already exists; choose another name")
    facts = preview(ws, start, end)
    with command_signing_identity(ws, passphrase, operator) as identity:
        pdf = render_period_pdf(facts, operator=operator, signer=_signer_label(identity))
        signed = sign_pdf(pdf, identity)
        files = {pdf_path: signed}
        if csv_path is not None:
            files[csv_path] = to_csv(facts).encode("utf-8")
        write_files(files, overwrite=overwrite)  # both or neither
        try:
            anchor = _checkpoint(ws, identity, operator, facts, signed)
        except BaseException:
            _remove_outputs(list(files))
            raise
    return {"pdf": str(pdf_path), "csv": str(csv_path) if csv_path else None,
            "period": facts["period"], "counts": facts["counts"],
            "overdue": facts["overdue"], "at_risk": facts["at_risk"],
            "time_to_erasure": facts["time_to_erasure"],
            "time_to_suppression": facts["time_to_suppression"],
            "time_to_exact": facts["time_to_exact"],
            "waiting_for_exact": facts["waiting_for_exact"],
            "certificates": [c["certificate_id"] for c in facts["certificates"]],
            "log_valid": facts["log"]["valid"], "log_head": facts["log"]["head_hash"],
            "signer_fingerprint": identity.fingerprint, "checkpoint": anchor["file"]}


def _checkpoint(ws: Workspace, identity: Any, operator: str, facts: dict[str, Any],
                signed: bytes) -> dict[str, Any]:
    """A signed checkpoint of the log head, naming the report and the head it states."""
    import hashlib

    from reports.checkpoints import checkpoint

    log = facts["log"]
    occasion = {"kind": "period-report", "from": facts["period"]["from"],
                "to": facts["period"]["to"], "pdf_sha256": hashlib.sha256(signed).hexdigest(),
                "report_head": {"seq": log["head_seq"], "hash": log["head_hash"]}}
    return checkpoint(ws, identity, operator, occasion)


def _remove_outputs(paths: list[Path]) -> None:
    """A report whose checkpoint failed is not issued: its files go again."""
    for path in paths:
        path.unlink(missing_ok=True)


def to_csv(facts: dict[str, Any]) -> str:
    """One row per request of the report."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in facts["requests"]:
        audit = r["audit"] or {}
        cert = r["certificates"][-1] if r["certificates"] else {}
        row = {k: r.get(k) for k in CSV_FIELDS if k in r}
        row.update(audit_run=audit.get("run_id"),
                   audit_passed={True: "pass", False: "fail", None: ""}[audit.get("passed")],
                   certificate_id=cert.get("certificate_id"),
                   manifest_sha256=cert.get("manifest_sha256"))
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: free text starting with ``= + - @``, tab or CR
    gets a leading single quote (OWASP's advice on CSV injection); None is empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _path(out: str | Path, suffix: str) -> Path:
    path = Path(out).expanduser().absolute()
    if path.suffix.lower() != suffix:
        raise UnpromptError(f"{path} does not end in {suffix}")
    if path.is_dir():
        raise UnpromptError(f"{path} is a folder")
    return path
