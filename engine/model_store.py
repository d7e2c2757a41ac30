"""Models in the registry: store a trained model as artifacts, load a version back.

A version is one shared artifact (backbone, adapters, architecture) plus one small
artifact per class (its prompt, head row and adapter), all content-addressed
(docs/design.md section 4). Loading verifies every artifact's sha256.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from engine.pfm import PreForgettableViT
from engine.residual_scan import prove_stored_artifacts
from storage.artifacts import sha256_hex
from storage.audits import artifacts_in_use as in_use
from storage.erasure_kinds import version_kind
from storage.errors import RefusedError, UnpromptError
from storage.models import Model, ModelVersion
from storage.registry import get_model, live_version
from storage.workspace import Workspace


def store_model(ws: Workspace, model: PreForgettableViT) -> tuple[str, dict[int, str]]:
    """Write the shared artifact and one artifact per class; return their hashes."""
    return store_blobs(ws, model_blobs(model))


Blobs = tuple[bytes, dict[int, bytes]]


def model_blobs(model: PreForgettableViT) -> Blobs:
    """The artifact bytes of ``model`` (shared, per class), not yet stored."""
    from engine.serialize import split

    return split(model)


def blob_hashes(blobs: Blobs) -> tuple[str, dict[int, str]]:
    """The hashes ``store_blobs`` will return: checks can run before anything is written."""
    shared, per_class = blobs
    return sha256_hex(shared), {cid: sha256_hex(data) for cid, data in per_class.items()}


def store_blobs(ws: Workspace, blobs: Blobs) -> tuple[str, dict[int, str]]:
    """Store the artifacts, then prove the large ones free of the class tensors."""
    shared, per_class = blobs
    shared_sha = ws.artifacts.put(shared, kind="shared")
    classes = {cid: ws.artifacts.put(data, kind="class") for cid, data in per_class.items()}
    prove_stored_artifacts(ws)
    return shared_sha, classes


@contextmanager
def registering(ws: Workspace, blobs: list[tuple[bytes, str]]) -> Iterator[list[str]]:
    """Store ``(bytes, kind)`` for a registration that may still refuse (a name taken
    meanwhile): on any error, the artifacts this call created and nothing points to go;
    once registered, the large ones are proven free of the class tensors (section 16)."""
    new = [sha256_hex(data) for data, _kind in blobs]
    new = [sha for sha in new if not ws.artifacts.exists(sha)]
    shas = [ws.artifacts.put(data, kind=kind) for data, kind in blobs]
    try:
        yield shas
    except BaseException:
        ws.artifacts.discard(new, in_use)
        raise
    prove_stored_artifacts(ws)


def load_version(ws: Workspace, version: ModelVersion) -> PreForgettableViT:
    """Assemble the model of ``version`` from its verified artifacts."""
    from engine.serialize import assemble

    if version.status == "purged":
        raise RefusedError(f"version {version.number} was purged by a forget; it cannot be "
                           "loaded any more")
    shared = ws.artifacts.get(version.shared_artifact)
    classes = {int(k): ws.artifacts.get(v) for k, v in version.class_artifacts.items()}
    return assemble(shared, classes)


def load_live(ws: Workspace, model_name: str) -> tuple[PreForgettableViT, dict[str, Any]]:
    """The live version's model and a plain description of it."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        version = live_version(session, model)
        info = {"model": model.name, "version": version.number, "mode": model.training_mode,
                "dataset": dict(model.dataset_ref), "config": dict(model.config),
                "erasure_kind": version_kind(model, version),
                "class_names": {c.label_index: c.display_name for c in model.classes}}
        return load_version(ws, version), info


def refuse_forgotten_since(ws: Workspace, model_name: str, class_ids: list[int],
                           what: str) -> None:
    """Refuse to commit ``what`` when one of ``class_ids`` (the classes it started with) was
    forgotten while it ran (a forget interleaved with a long job, issue 22): its result was
    made from that class's data, so registering it would bring the class back."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        gone = sorted((c.label_index, c.display_name) for c in model.classes
                      if c.status == "forgotten" and c.label_index in set(class_ids))
    if gone:
        names = ", ".join(repr(name) for _, name in gone)
        raise RefusedError(f"{what} of {model_name!r} stopped: {names} was forgotten while it "
                           "ran and its data shaped the result, so nothing was registered; "
                           "run it again")


def image_model(session: Session, name: str) -> Model:
    model = get_model(session, name)
    if model.kind != "image":
        raise UnpromptError(f"model {name!r} is a {model.kind} model, not an image classifier")
    return model


def refuse_taken_name(ws: Workspace, name: str) -> None:
    if not name or not name.strip():
        raise UnpromptError("the model name is empty")
    with ws.sessions() as session:
        if session.query(Model).filter_by(name=name).first() is not None:
            raise RefusedError(f"a model named {name!r} already exists; choose another name")
