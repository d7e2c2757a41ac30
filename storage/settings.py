"""Workspace settings stored in the registry (four-eyes, audit thresholds, timestamp authority)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage import auditlog
from storage.artifact_store import check_kind
from storage.errors import UnpromptError
from storage.models import Setting

DEFAULTS: dict[str, Any] = {
    "four_eyes": True,  # workspaces created before migration 0003 store False
    "tsa_url": "",
    # Pass / fail thresholds for audit figures (reports, certificates): absolute gaps to
    # the retrain reference, as fractions. ``mia_efficacy_gap`` judges the label-free top-1
    # MIA figure where SalUn's is degenerate (storage/audit_checks.py::mia_key).
    "thresholds": {"mia_efficacy_gap": 0.05, "distinguishability_gap": 0.05,
                   "relearn_gap": 0.05, "forget_accuracy_max": 0.0},
    # Pass / fail thresholds for forget-rule audits (`guard eval`): knowledge left above the
    # ignorant reference, unflagged answers unchanged, classifier rates on held-out prompts
    # (fractions), classifier latency (milliseconds, 95th percentile).
    # A retrain whose retained-class test accuracy falls more than this (a fraction) below
    # the live version's waits for an operator's decision (docs/design.md section 18).
    "retrain_margin": 0.02,
    # What the workspace folder lives on (storage/artifact_store.py): certificates say what
    # a purge covers on it (docs/artifact-stores.md).
    "artifact_store": "local",
    "guard_thresholds": {"knowledge_gap_max": 0.05, "identical_unflagged_min": 1.0,
                         "tpr_forget_min": 0.9, "fpr_general_max": 0.05,
                         "fpr_neighbour_max": 0.2, "classifier_p95_ms_max": 100.0},
}


def get_setting(session: Session, key: str) -> Any:
    if key not in DEFAULTS:
        raise UnpromptError(f"unknown setting {key!r} (known: {', '.join(sorted(DEFAULTS))})")
    row = session.get(Setting, key)
    return row.value if row is not None else DEFAULTS[key]


def all_settings(session: Session) -> dict[str, Any]:
    return {key: get_setting(session, key) for key in DEFAULTS}


CHECKS = {"artifact_store": check_kind}  # settings whose values are a closed set


def set_setting(session: Session, key: str, value: Any, actor: str) -> None:
    """Change a setting and log it, in the caller's transaction."""
    old = get_setting(session, key)
    if key in CHECKS:
        value = CHECKS[key](value)
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
    auditlog.append(session, actor, "settings.changed", {"key": key, "old": old, "new": value})
