"""Read helpers over the registry that return plain dicts (safe to pass between threads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.erasure_kinds import version_kind
from storage.errors import NotFoundError
from storage.models import ClassEntry, Model, ModelVersion


def get_model(session: Session, name: str) -> Model:
    model = session.scalars(select(Model).where(Model.name == name)).first()
    if model is None:
        raise NotFoundError(f"no model named {name!r} (see `models`)")
    return model


def live_version(session: Session, model: Model) -> ModelVersion:
    versions = [v for v in model.versions if v.status == "live"]
    if not versions:
        raise NotFoundError(f"model {model.name!r} has no live version")
    return versions[-1]


def version_dict(version: ModelVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "status": version.status,
        "parent": _parent_number(version),
        "shared_artifact": version.shared_artifact,
        "class_artifacts": dict(version.class_artifacts),
        "erasure_kind": version_kind(version.model, version) if version.erasure_kind else "",
        "metrics": dict(version.metrics),
        "created_at": version.created_at.isoformat(),
    }


def _parent_number(version: ModelVersion) -> int | None:
    if version.parent_id is None:
        return None
    parents = [v for v in version.model.versions if v.id == version.parent_id]
    return parents[0].number if parents else None


def model_dict(model: Model) -> dict[str, Any]:
    live = [v.number for v in model.versions if v.status == "live"]
    return {
        "name": model.name,
        "kind": model.kind,
        "backbone": model.backbone,
        "mode": model.training_mode,
        "dataset": dict(model.dataset_ref),
        "created_at": model.created_at.isoformat(),
        "live_version": live[-1] if live else None,
        "versions": [version_dict(v) for v in model.versions],
    }


def list_models(session: Session) -> list[dict[str, Any]]:
    return [model_dict(m) for m in session.scalars(select(Model).order_by(Model.name))]


def class_dict(session: Session, entry: ClassEntry) -> dict[str, Any]:
    forgotten_in = session.get(ModelVersion, entry.forgotten_in_version_id) \
        if entry.forgotten_in_version_id else None
    return {
        "index": entry.label_index,
        "name": entry.display_name,
        "status": entry.status,
        "forgotten_in_version": forgotten_in.number if forgotten_in else None,
        "request": entry.request_id,
    }


def list_classes(session: Session, model_name: str) -> list[dict[str, Any]]:
    model = get_model(session, model_name)
    return [class_dict(session, c) for c in model.classes]
