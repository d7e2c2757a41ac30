"""The append-only, hash-chained audit log (docs/design.md section 3).

hash = sha256(prev_hash + canonical JSON of the entry's seq, timestamp, actor, action
and payload). ``append`` runs inside the caller's transaction, so a state change and
its log entry commit together or not at all; it reads the head under the registry's write
lock, so appends from several processes or machines queue and the chain never forks
(docs/design.md section 12).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import hold_write_lock
from storage.models import AuditLogEntry, utcnow  # noqa: F401 - re-exported

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the one serialisation that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, seq: int, timestamp: str, actor: str, action: str,
               payload: str) -> str:
    body = {"seq": seq, "timestamp": timestamp, "actor": actor, "action": action,
            "payload": json.loads(payload)}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def head(session: Session) -> AuditLogEntry | None:
    return session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq.desc())).first()


def head_hash(session: Session) -> str:
    last = head(session)
    return last.hash if last else GENESIS


def append(session: Session, actor: str, action: str, payload: dict[str, Any]) -> AuditLogEntry:
    """Add one entry after the current head, in the caller's transaction."""
    hold_write_lock(session)
    last = head(session)
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    timestamp = utcnow().isoformat(timespec="microseconds")
    text = canonical_json(payload)
    entry = AuditLogEntry(seq=seq, timestamp=timestamp, actor=actor, action=action,
                          payload=text, prev_hash=prev,
                          hash=entry_hash(prev, seq, timestamp, actor, action, text))
    session.add(entry)
    session.flush()
    return entry


@dataclass
class ChainReport:
    valid: bool
    entries: int
    first_bad: int | None
    reason: str
    head_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "entries": self.entries, "first_bad": self.first_bad,
                "reason": self.reason, "head_hash": self.head_hash}


def verify(session: Session) -> ChainReport:
    """Recompute the chain; name the first entry that is edited, missing or out of order."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq)):
        count += 1
        problem = _check_entry(entry, prev, expected_seq)
        if problem:
            return ChainReport(False, count, entry.seq, problem, prev)
        prev, expected_seq = entry.hash, entry.seq + 1
    return ChainReport(True, count, None, "", prev)


def _check_entry(entry: AuditLogEntry, prev: str, expected_seq: int) -> str:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (next found is {entry.seq})"
    if entry.prev_hash != prev:
        return f"entry {entry.seq} does not follow entry {entry.seq - 1} (reordered or replaced)"
    try:
        recomputed = entry_hash(prev, entry.seq, entry.timestamp, entry.actor, entry.action,
                                entry.payload)
    except (ValueError, TypeError):
        return f"entry {entry.seq} has an unreadable payload"
    if recomputed != entry.hash:
        return f"entry {entry.seq} was edited after it was written"
    return ""


def entry_at(session: Session, seq: int) -> AuditLogEntry | None:
    return session.get(AuditLogEntry, seq)


def head_problem(session: Session, seq: Any, digest: Any) -> str:
    """Why an anchored head (``seq``, ``hash``) is not in the chain; '' when it is.

    Seq 0 with the genesis hash is the empty log's head and always holds."""
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
        return "the anchored head is unreadable"
    if seq == 0:
        return "" if digest == GENESIS else "the anchored head of an empty log is not genesis"
    entry = entry_at(session, seq)
    if entry is None:
        return f"entry {seq} is no longer in the log (the log was truncated or rewritten)"
    if entry.hash != digest:
        return f"entry {seq} now has another hash (the log was rewritten from there back)"
    return ""


def entries_of(session: Session, actions: tuple[str, ...], below: int | None = None
               ) -> list[tuple[AuditLogEntry, dict[str, Any]]]:
    """``(entry, payload)`` of the given actions in order, only before seq ``below``."""
    query = select(AuditLogEntry).where(AuditLogEntry.action.in_(actions))
    if below is not None:
        query = query.where(AuditLogEntry.seq < below)
    out = []
    for entry in session.scalars(query.order_by(AuditLogEntry.seq)):
        try:
            payload = json.loads(entry.payload)
        except ValueError:
            continue
        if isinstance(payload, dict):
            out.append((entry, payload))
    return out
