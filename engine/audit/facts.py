"""What an audit needs to know from the registry, read once as plain data."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.model_store import image_model
from storage.models import Model, ModelVersion
from storage.registry import live_version
from storage.workspace import Workspace

EXACT_MODES = ("isolated", "frozen", "independent")


def registry_facts(ws: Workspace, model_name: str) -> dict[str, Any]:
    """Ids, config, forgotten classes and earlier figures of ``model_name``'s live version."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        live = live_version(session, model)
        first = model.versions[0]
        names = {c.label_index: c.display_name for c in model.classes}
        latency = live.metrics.get("latency_ms")
        return {
            "model": model.name, "model_id": model.id, "version_id": live.id,
            "version": live.number, "names": names,
            "forgotten": sorted(c.label_index for c in model.classes
                                if c.status == "forgotten"),
            "erasure_kind": erasure_kind(live.erasure_kind, model.training_mode),
            "scrub": live.metrics.get("scrub"),
            "config": dict(model.config),
            "backbone_source": dict(first.metrics.get("backbone_source") or {"kind": "none"}),
            "forget_seconds": None if latency is None else float(latency) / 1000.0,
            "before": accuracy_before(session, model, live, names),
        }


def model_row(session: Session, facts: dict[str, Any]) -> Model:
    return session.get(Model, facts["model_id"])


def erasure_kind(recorded: str | None, mode: str) -> str:
    """The version's recorded kind; without one, exact only for the exact-by-construction
    modes (every trainable parameter belongs to one class)."""
    if recorded in ("exact", "approximate"):
        return recorded
    return "exact" if mode in EXACT_MODES else "approximate"


def accuracy_before(session: Session, model: Model, live: ModelVersion,
                    names: dict[int, str]) -> dict[str, float]:
    """Per-class test accuracy before the latest forget, from the recorded version metrics
    (the purged versions cannot be loaded any more); empty when nothing was recorded."""
    if "accuracy_before" in live.metrics:
        return dict(live.metrics["accuracy_before"].get("per_class", {}))
    version: ModelVersion | None = session.get(ModelVersion, live.parent_id) \
        if live.parent_id else None
    while version is not None:
        if "accuracy_after" in version.metrics:
            return dict(version.metrics["accuracy_after"].get("per_class", {}))
        if "per_class" in version.metrics:  # version 1: keyed by class id
            return {names.get(int(k), k): float(v)
                    for k, v in version.metrics["per_class"].items()}
        version = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    return {}
