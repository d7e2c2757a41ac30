"""Dates and figures as an operator reads them (local time, whole days)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any


def parse(iso: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(iso) if iso else None


def local_time(iso: str | None) -> str:
    """'2026-05-09 14:03' in the computer's time zone; '' for None."""
    value = parse(iso)
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def local_date(iso: str | None) -> str:
    value = parse(iso)
    return value.astimezone().strftime("%Y-%m-%d") if value else ""


def days_until(iso: str, now: dt.datetime | None = None) -> int:
    """Whole days from now until ``iso`` (rounded up; negative when past)."""
    now = now or dt.datetime.now(dt.UTC)
    return math.ceil((parse(iso) - now).total_seconds() / 86400)


def compact_json(text: str) -> str:
    """A one-line, readable rendering of a JSON payload."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):  # 'request: 4' first, nested values (a scope) last
        items = sorted(value.items(), key=lambda kv: (kv[0] != "request",
                                                      isinstance(kv[1], dict | list)))
        return ", ".join(f"{k}: {_short(v)}" for k, v in items)
    return _short(value)


def _short(value: Any) -> str:
    if isinstance(value, str):
        return local_time(value) if _is_timestamp(value) else value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _is_timestamp(text: str) -> bool:
    if len(text) < 19 or text[10] != "T":
        return False
    try:
        return parse(text).tzinfo is not None
    except ValueError:
        return False


def pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
