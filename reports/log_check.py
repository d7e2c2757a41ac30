"""`log verify`: the chain, and that every head anchored outside the log is still in it.

Beyond the chain's internal consistency (storage/auditlog.py) it checks the anchors:
- every certificate's manifest (the registry's rows and the stored copies under
  ``certificates/``) names the log head it was issued at;
- every signed checkpoint under ``checkpoints/`` (reports/checkpoints.py) must carry a valid
  signature by one of the workspace's own keys (per the log), state a head that is still in
  the chain, and be referenced by its ``log.checkpoint`` entry; every such entry's file must
  exist;
- every RFC 3161 token of a checkpoint must cover it and come from a pinned authority.
A truncated or recomputed log loses anchored heads, and the report names each one missing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports import checkpoints
from reports.trust import LogTrust, pinned_certificates, read_trust
from storage import auditlog
from storage.errors import UnpromptError
from storage.models import Certificate
from storage.workspace import Workspace


def verify_log(ws: Workspace) -> dict[str, Any]:
    """The chain report plus ``anchors`` and ``checkpoints``; ``valid`` only if all hold."""
    with ws.sessions() as session:
        chain = auditlog.verify(session)
        trust = read_trust(session, chain)
        anchors = _anchor_problems(session, _anchored_heads(session, ws))
        found, problems = _checkpoint_problems(session, ws, trust)
        stamped, stamp_problems = _timestamps(session, ws, trust)
    latest = max(found, key=lambda c: c.seq, default=None)
    problems = anchors["missing"] + problems + stamp_problems
    return {**chain.to_dict(), "valid": chain.valid and not problems,
            "anchors": {"checked": anchors["checked"], "missing": anchors["missing"]},
            "checkpoints": {"checked": len(found), "timestamped": len(stamped),
                            "latest": _latest(latest, stamped)},
            "problems": problems}


def _latest(latest: checkpoints.Checkpoint | None, stamped: dict[str, Any]
            ) -> dict[str, Any] | None:
    if latest is None:
        return None
    proven = stamped.get(latest.name)
    return {**checkpoints.summary(latest),
            "timestamp": proven.isoformat(timespec="seconds") if proven else None}


def _timestamps(session: Session, ws: Workspace, trust: LogTrust
                ) -> tuple[dict[str, Any], list[str]]:
    """RFC 3161 tokens of checkpoints (reports/checkpoint_tsa.py): each must cover its
    checkpoint and come from a pinned authority; each logged token must exist."""
    from reports.checkpoint_tsa import ACTION, SUFFIX, token_time

    trusted, _ = pinned_certificates(ws.keys_dir, trust)
    stamped, problems = {}, []
    for path in sorted(checkpoints.folder(ws).glob(f"*{SUFFIX}")):
        target = path.with_name(path.name[:-len(SUFFIX)])
        try:
            stamped[target.name] = token_time(path.read_bytes(), target.read_bytes(), trusted)
        except (OSError, UnpromptError) as exc:
            problems.append(f"timestamp {path.name}: {exc}")
    for entry, payload in auditlog.entries_of(session, (ACTION,)):
        name = f"{payload.get('file')}{SUFFIX}"
        if not (checkpoints.folder(ws) / name).is_file():
            problems.append(f"timestamp {name} (log entry {entry.seq}) is missing")
    return stamped, problems


def _anchored_heads(session: Session, ws: Workspace) -> list[tuple[str, Any]]:
    """``(what, head)`` for every certificate manifest, in the registry and on disk."""
    heads = []
    for row in session.scalars(select(Certificate).order_by(Certificate.created_at)):
        heads.append((f"certificate {row.id}", _head_of(row.manifest)))
    for path in sorted(ws.certificates_dir.glob("*.json")):
        try:
            heads.append((f"stored certificate {path.name}", _head_of(path.read_text("utf-8"))))
        except OSError:
            heads.append((f"stored certificate {path.name}", None))
    return heads


def _head_of(manifest_text: str) -> Any:
    try:
        head = json.loads(manifest_text).get("audit_log_head")
    except (ValueError, AttributeError):
        return None
    return head if isinstance(head, dict) else None


def _anchor_problems(session: Session, heads: list[tuple[str, Any]]) -> dict[str, Any]:
    missing = []
    for what, head in heads:
        problem = ("its manifest names no readable log head" if head is None else
                   auditlog.head_problem(session, head.get("seq"), head.get("hash")))
        if problem:
            missing.append(f"{what} anchors a head that is gone: {problem}")
    return {"checked": len(heads), "missing": missing}


def _checkpoint_problems(session: Session, ws: Workspace, trust: LogTrust
                         ) -> tuple[list[checkpoints.Checkpoint], list[str]]:
    """Signed, pinned, in the chain and referenced; and no referenced file missing."""
    entries = {str(p.get("file")): (e, p) for e, p in
               auditlog.entries_of(session, (checkpoints.ACTION,))}
    found, problems = [], []
    paths = sorted(checkpoints.folder(ws).glob("*.json"))
    for path in paths:
        try:
            item = checkpoints.load(path)
        except UnpromptError as exc:
            problems.append(str(exc))
            continue
        problems += _one_checkpoint(session, item, trust, entries.get(path.name))
        found.append(item)
    present = {p.name for p in paths}
    problems += [f"checkpoint file {name} (log entry {e.seq}) is missing from "
                 f"{checkpoints.FOLDER}/" for name, (e, _) in entries.items()
                 if name not in present]
    return found, problems


def _one_checkpoint(session: Session, item: checkpoints.Checkpoint, trust: LogTrust,
                    entry: tuple[Any, dict[str, Any]] | None) -> list[str]:
    problems = []
    head = auditlog.head_problem(session, item.seq, item.hash)
    if head:
        problems.append(f"checkpoint {item.name} (signed {item.body['signed_at']}) "
                        f"anchors a head that is gone: {head}")
    if item.fingerprint not in trust.own:
        problems.append(f"checkpoint {item.name} is signed by a key that the audit log does "
                        "not record as this workspace's own (generated or imported)")
    if entry is None or entry[1].get("sha256") != item.sha256:
        problems.append(f"checkpoint {item.name} is not referenced by a log.checkpoint "
                        "entry (the entry was removed, or the file replaced)")
    report_head = (item.body.get("occasion") or {}).get("report_head")
    if isinstance(report_head, dict):
        gone = auditlog.head_problem(session, report_head.get("seq"), report_head.get("hash"))
        if gone:
            problems.append(f"the period report checkpointed in {item.name} anchors a head "
                            f"that is gone: {gone}")
    return problems


def covering_checkpoints(ws: Workspace, session: Session, trust: LogTrust, seq: int
                         ) -> list[checkpoints.Checkpoint]:
    """Valid checkpoints signed by an own key whose head (still in the chain) covers ``seq``,
    earliest first: each attests that the entry existed when it was signed."""
    out = []
    for path in sorted(checkpoints.folder(ws).glob("*.json")):
        try:
            item = checkpoints.load(path)
        except UnpromptError:
            continue
        if (item.fingerprint in trust.own and isinstance(item.seq, int)
                and item.seq >= seq and not auditlog.head_problem(session, item.seq, item.hash)):
            out.append(item)
    return sorted(out, key=lambda c: c.signed_at)


def describe_problems(result: dict[str, Any]) -> list[str]:
    """Every problem as one line (chain first), for the CLI and the GUI."""
    lines = [] if result["first_bad"] is None else [
        f"the chain is broken at entry {result['first_bad']}: {result['reason']}"]
    return lines + list(result["problems"])
