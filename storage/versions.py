"""Registry transactions for model versions: register, forget, learn (docs/design.md section 4).

Each function runs inside the caller's ``with Session.begin()`` block, so the version,
the class statuses, the request and the audit-log entries commit together or not at all.
No tensor bytes ever enter the registry: versions list artifact hashes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from storage import auditlog
from storage.erasure_kinds import forget_kind
from storage.errors import RefusedError
from storage.models import ClassEntry, ErasureRequest, Model, ModelVersion
from storage.registry import live_version
from storage.requests import resolve_class


@dataclass
class NewModel:
    name: str
    kind: str
    backbone: str
    mode: str
    dataset_ref: dict[str, Any]
    config: dict[str, Any]
    shared_artifact: str
    class_artifacts: dict[int, str]
    class_names: dict[int, str]
    metrics: dict[str, Any]
    erasure_kind: str


def register_model(session: Session, new: NewModel, operator: str) -> ModelVersion:
    """Model + version 1 + one ClassEntry per class, logged."""
    if session.query(Model).filter_by(name=new.name).first() is not None:
        raise RefusedError(f"a model named {new.name!r} already exists; choose another name")
    model = Model(name=new.name, kind=new.kind, backbone=new.backbone, training_mode=new.mode,
                  dataset_ref=new.dataset_ref, config=new.config)
    session.add(model)
    session.flush()
    version = ModelVersion(model_id=model.id, number=1, shared_artifact=new.shared_artifact,
                           class_artifacts={str(k): v for k, v in new.class_artifacts.items()},
                           metrics=new.metrics, erasure_kind=new.erasure_kind)
    session.add(version)
    for label, name in sorted(new.class_names.items()):
        session.add(ClassEntry(model_id=model.id, label_index=label, display_name=name))
    session.flush()
    auditlog.append(session, operator, "model.registered", {
        "model": new.name, "kind": new.kind, "mode": new.mode, "version": 1,
        "shared_artifact": new.shared_artifact, "classes": sorted(new.class_artifacts)})
    return version


def classes_to_forget(model: Model, keys: list[str]) -> list[ClassEntry]:
    """Resolve names / indices and refuse what cannot be forgotten; nothing is changed."""
    if not keys:
        raise RefusedError("name at least one class to forget (--class)")
    entries = [resolve_class(model, key) for key in keys]
    for entry in entries:
        if entry.status == "forgotten":
            raise RefusedError(f"class {entry.display_name!r} of {model.name!r} is already "
                               "forgotten")
    learned = [e for e in model.classes if e.status == "learned"]
    if len({e.id for e in entries}) >= len(learned):
        raise RefusedError(f"forgetting {', '.join(e.display_name for e in entries)} would "
                           f"leave {model.name!r} with no class; retire the model instead")
    return list({e.id: e for e in entries}.values())


def commit_forget(session: Session, model: Model, entries: list[ClassEntry],
                  operator: str, request: ErasureRequest | None,
                  metrics: dict[str, Any]) -> tuple[ModelVersion, list[str]]:
    """Version v+1 without the classes' artifacts; returns it and the hashes to purge."""
    old = live_version(session, model)
    labels = {str(e.label_index) for e in entries}
    removed = [old.class_artifacts[k] for k in sorted(labels) if k in old.class_artifacts]
    new = ModelVersion(model_id=model.id, number=old.number + 1, parent_id=old.id,
                       shared_artifact=old.shared_artifact,
                       class_artifacts={k: v for k, v in old.class_artifacts.items()
                                        if k not in labels},
                       erasure_kind=forget_kind(model, old), metrics=metrics)
    session.add(new)
    for version in model.versions:  # every earlier version that held them can no longer load
        if version is not new and set(version.class_artifacts.values()) & set(removed):
            version.status = "purged"
    session.flush()
    for entry in entries:
        entry.status, entry.forgotten_in_version_id = "forgotten", new.id
        entry.request_id = request.id if request else None
    auditlog.append(session, operator, "model.forgotten", {
        "model": model.name, "from_version": old.number, "to_version": new.number,
        "classes": sorted(int(k) for k in labels), "purged_artifacts": removed,
        "request": request.id if request else None, "erasure_kind": new.erasure_kind})
    return new, removed


def mark_unloadable(session: Session, removed: list[str]) -> None:
    """Every version of any model that holds a purged artifact can no longer load."""
    gone = set(removed)
    for version in session.query(ModelVersion).filter(ModelVersion.status != "purged"):
        if version.status != "live" and gone & set(version.class_artifacts.values()):
            version.status = "purged"


def commit_learn(session: Session, model: Model, label: int, name: str, artifact: str,
                 operator: str, metrics: dict[str, Any]) -> ModelVersion:
    """Version v+1 with one more class artifact; the other artifacts are unchanged."""
    old = live_version(session, model)
    new = ModelVersion(model_id=model.id, number=old.number + 1, parent_id=old.id,
                       shared_artifact=old.shared_artifact,
                       class_artifacts={**old.class_artifacts, str(label): artifact},
                       erasure_kind=old.erasure_kind, metrics=metrics)
    session.add(new)
    old.status = "superseded"
    session.add(ClassEntry(model_id=model.id, label_index=label, display_name=name))
    session.flush()
    auditlog.append(session, operator, "model.class_learned", {
        "model": model.name, "from_version": old.number, "to_version": new.number,
        "class": label, "name": name, "artifact": artifact})
    return new
