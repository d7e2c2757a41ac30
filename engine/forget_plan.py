"""What a forget will remove, decided before anything changes (docs/design.md section 4).

A forgotten class lives in more files than the live version's class artifact:
- another model trained alike holds the very same bytes (artifacts are content-
  addressed); purging them would break it, keeping them would make the scan's "clean"
  a lie, so the forget refuses unless the operator forgets them there too
  (``also_shared``: the same classes leave every model that holds their bytes);
- a cached retrain reference (``engine.audit.reference``) that retained the class
  learned it: its class artifact and, when it trained shared weights, its backbone.
The plan reads the bytes the residual scan looks for (before the purge destroys them)
and their fingerprints (``storage.residue``), which the new version keeps so that a
scan interrupted by a crash can still run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.model_store import image_model
from storage import audits
from storage import requests as reqs
from storage.erasure_kinds import forget_kind
from storage.errors import RefusedError, UnpromptError
from storage.models import Model, ModelVersion
from storage.registry import live_version
from storage.residue import MIN_PATTERN, fingerprint
from storage.versions import classes_to_forget
from storage.workspace import Workspace


def make_plan(ws: Workspace, model_name: str, keys: list[str], request_id: Any,
              also_shared: bool = False) -> dict[str, Any]:
    """Resolve and refuse before anything changes; read the bytes the scan looks for."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        entries = classes_to_forget(model, keys)
        if request_id is not None:
            _check_request_scope(session, request_id, model_name, entries)
        version = live_version(session, model)
        labels = sorted(e.label_index for e in entries)
        shas = [version.class_artifacts[str(k)] for k in labels]
        others = _other_holders(session, model, shas, also_shared)
        refs = _stale_reference_artifacts(session, model, set(labels), version.shared_artifact)
        plan = {"model": model_name, "labels": labels, "names": [e.display_name for e in entries],
                "request": request_id, "from_version": version.number,
                "erasure_kind": forget_kind(model, version), "also": others}
    patterns = _patterns(ws, shas, refs)
    return {**plan, "patterns": patterns, "fingerprints": [fingerprint(p) for p in patterns]}


def _check_request_scope(session: Session, request_id: Any, model_name: str,
                         entries: list) -> None:
    request = reqs.get_request(session, request_id)
    reqs.check_executable(session, request, "classes")
    scoped = {c["index"] for c in request.scope.get("classes", [])}
    asked = {e.label_index for e in entries}
    if request.scope.get("model") != model_name or scoped != asked:
        raise UnpromptError(f"request {request.id} covers {request.scope.get('model')} classes "
                            f"{sorted(scoped)}, not {model_name} classes {sorted(asked)}")


def _other_holders(session: Session, model: Model, shas: list[str],
                   also_shared: bool) -> dict[str, list[int]]:
    """``{other model: its labels}`` whose live version holds the same class bytes;
    refuses unless ``also_shared`` (then they are forgotten there too)."""
    doomed, out = set(shas), {}
    for version in session.query(ModelVersion).filter(ModelVersion.model_id != model.id,
                                                      ModelVersion.status == "live"):
        labels = sorted(int(k) for k, v in version.class_artifacts.items() if v in doomed)
        if labels:
            out[version.model.name] = labels
    if out and not also_shared:
        held = "; ".join(f"{name!r} (classes {', '.join(map(str, labels))})"
                         for name, labels in sorted(out.items()))
        raise RefusedError(f"the same class bytes are also held by {held}, a model trained "
                           "alike: purging them would break it; forget them from both models "
                           "(--also-shared) or not at all (nothing changed)")
    for name, labels in out.items():  # the other model must accept the forget too
        classes_to_forget(image_model(session, name), [str(k) for k in labels])
    return out


def _stale_reference_artifacts(session: Session, model: Model, labels: set[int],
                               live_shared: str) -> list[tuple[str, str]]:
    """``(kind, sha)`` of what the references retiring with this forget learned of a
    forgotten class: their artifacts of those classes and any backbone they trained."""
    forgotten = labels | {c.label_index for c in model.classes if c.status == "forgotten"}
    out = []
    for run in audits.references(session, model):
        learned = forgotten & {int(c) for c in run.config.get("retained", [])}
        if not learned:
            continue
        out += [("class", run.metrics["class_artifacts"][str(c)]) for c in sorted(learned)
                if str(c) in run.metrics["class_artifacts"]]
        if run.metrics["shared_artifact"] != live_shared:
            out.append(("shared", run.metrics["shared_artifact"]))
    return list(dict.fromkeys(out))


def _patterns(ws: Workspace, shas: list[str], refs: list[tuple[str, str]]) -> list[bytes]:
    """The tensor bytes the residual scan must not find once the purge is done; a
    reference's backbone tensors equal to a live backbone's are not its own."""
    out = [fp for sha in shas for fp in _tensors(ws, sha, required=True)]
    out += [fp for kind, sha in refs if kind == "class" for fp in _tensors(ws, sha)]
    backbones = [sha for kind, sha in refs if kind == "shared"]
    if backbones:
        kept = set(_live_backbone_tensors(ws))
        out += [fp for sha in backbones for fp in _tensors(ws, sha)
                if fp not in kept and len(set(fp)) > 1]
    return [p for p in dict.fromkeys(out) if len(p) >= MIN_PATTERN]


def _tensors(ws: Workspace, sha: str, required: bool = False) -> list[bytes]:
    """The tensor bytes of one artifact; a damaged cached reference is purged all the
    same, it just adds nothing to look for."""
    from engine.serialize import class_tensor_fingerprints

    try:
        return class_tensor_fingerprints(ws.artifacts.get(sha))
    except UnpromptError:
        if required:
            raise
        return []


def _live_backbone_tensors(ws: Workspace) -> list[bytes]:
    with ws.sessions() as session:
        shared = {v.shared_artifact for v in session.query(ModelVersion)
                  .filter(ModelVersion.status != "purged")}
    return [fp for sha in shared if sha for fp in _tensors(ws, sha)]
