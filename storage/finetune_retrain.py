"""Registry side of a fine-tuned language model's retrain follow-up (docs/design.md
sections 14 and 18).

A request about a person of a fine-tuned model is *suppressed* by their forget rule; the
weights still learned their records. The retrain fine-tunes the base model again without
every person whose request waits, and ``commit_finetune_retrain`` promotes it in one
transaction: version v+1 (recorded ``retrained``: exact) with the kept people's records,
every earlier version purged (their weights folders are destroyed after the commit, see
``storage.weights_purge``), each covered person's records artifact and forget-rule
classifier marked for purging, their rules *retired* (the retrained model never saw the
person, so the rule is no longer needed for the erasure, and its classifier and examples
are derived from the person's records), the covered requests exact. Runs inside the
caller's ``with Session.begin()`` and logs what it changes.

A retrain whose kept people's answers score more than ``retrain_margin`` below the live
version's is *held* like an image retrain: a ``reference`` AuditRun of the live version
names the saved weights folder and waits for ``storage.retrain.decide_held``; once accepted,
the next ``retrain N`` promotes that folder without training again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage import auditlog
from storage.erasure_kinds import RETRAINED
from storage.errors import RefusedError
from storage.models import AuditRun, ErasureRequest, ForgetRule, Model, ModelVersion, utcnow
from storage.registry import live_version
from storage.retrain import ACCEPTED, check_pending, hold, mark_exact

RETIRED = "retired"  # a subject's rule after a retrain made its request exact


def covered(session: Session, model: Model, records: list[str]) -> list[ErasureRequest]:
    """The pending requests (checked again now) whose person's records are ``records``
    (artifacts): a request executed while the retrain ran is not covered, it waits."""
    wanted = set(records)
    return [r for r in check_pending(session, model, [])
            if r.scope.get("subject_records") in wanted]


def commit_finetune_retrain(session: Session, model: Model, *, folder: str,
                            kept: dict[str, dict[str, Any]], left_out: list[str],
                            details: dict[str, Any], operator: str
                            ) -> tuple[ModelVersion, list[ErasureRequest], list[str], list[str]]:
    """Promote the retrained weights in ``folder``. ``kept``: person -> records entry of
    the people it trained on; ``left_out``: the records artifacts it left out. Returns
    the new version, the requests made exact, the artifacts to purge, the folders of the
    earlier versions (to destroy once committed)."""
    requests = covered(session, model, left_out)
    if not requests:
        raise RefusedError(f"no request on {model.name!r} waits for the people this retrain "
                           "left out any more; nothing was promoted")
    old = live_version(session, model)
    new = ModelVersion(model_id=model.id, number=old.number + 1, parent_id=old.id,
                       erasure_kind=RETRAINED,
                       metrics={**details, "folder": folder, "subjects": kept})
    session.add(new)
    folders = [v.metrics.get("folder") for v in model.versions
               if v is not new and v.status != "purged"]
    for version in model.versions:
        if version is not new:
            version.status = "purged"
    model.config = {**model.config, "spec": folder}
    session.flush()
    now, doomed = utcnow(), list(left_out)
    for request in requests:
        mark_exact(session, request, operator, new.number, now)
        doomed += retire_subject_rule(session, model, request, operator, new.number)
    auditlog.append(session, operator, "model.retrained", {
        "model": model.name, "from_version": old.number, "to_version": new.number,
        "weights_sha256": details.get("weights_sha256"), "people": len(kept),
        "records_left_out": left_out, "requests": [r.id for r in requests],
        "purged_artifacts": doomed, "erasure_kind": "exact"})
    return new, requests, list(dict.fromkeys(doomed)), [f for f in folders if f]


def retire_subject_rule(session: Session, model: Model, request: ErasureRequest,
                        operator: str, version: int) -> list[str]:
    """Retire the forget rule of the request's person; returns its classifier artifacts
    (every version the request and the rule name) for purging."""
    rule = session.query(ForgetRule).filter_by(model_id=model.id,
                                               name=request.scope.get("rule")).first()
    if rule is None:
        return []
    shas = [rule.classifier_artifact, request.result.get("classifier_artifact") or ""]
    counts = {part: len(rule.examples.get(part) or []) for part in rule.examples or {}}
    rule.status, rule.updated_at, rule.examples = RETIRED, utcnow(), {}
    auditlog.append(session, operator, "rule.retired", {
        "model": model.name, "rule": rule.name, "version": rule.version,
        "request": request.id, "model_version": version, "examples_removed": counts,
        "why": "the retrained model never saw the person's records"})
    return [s for s in dict.fromkeys(shas) if s]


def hold_finetune(session: Session, model: Model, folder: str, details: dict[str, Any],
                  figures: dict[str, Any], operator: str) -> AuditRun:
    """Keep a retrain too far below the live version for an operator's decision."""
    live = live_version(session, model)
    run = AuditRun(version_id=live.id, kind="reference", config={"retained": [],
                                                                 "finetune": True},
                   metrics={"status": "stored", "shared_artifact": "", "class_artifacts": {},
                            "folder": folder, "details": details})
    session.add(run)
    session.flush()
    hold(session, run, operator, {"model": model.name, "from_version": live.number,
                                  **{k: figures[k] for k in ("margin", "retained_live",
                                                             "retained_retrain")}})
    return run


def accepted_finetune(session: Session, model: Model) -> AuditRun | None:
    """A held retrain of the live version an operator accepted (promoted on the next run)."""
    live = live_version(session, model)
    runs = session.query(AuditRun).filter_by(version_id=live.id, kind="reference").all()
    return next((r for r in reversed(runs) if r.metrics.get("status") == "stored"
                 and (r.metrics.get("retrain") or {}).get("status") == ACCEPTED), None)


def settle(session: Session, run_id: int | None) -> None:
    """A held retrain that was promoted is no longer a stored reference."""
    run = session.get(AuditRun, run_id) if run_id else None
    if run is not None:
        run.metrics = {**run.metrics, "status": "promoted"}


def registered_folders(session: Session, model: Model) -> set[str]:
    """Every weights folder the registry names for ``model``: its versions' (purged ones
    too: ``Workspace.open`` destroys those paths) and its held retrains'."""
    folders = {(v.metrics or {}).get("folder") for v in model.versions}
    runs = session.query(AuditRun).join(ModelVersion).filter(
        ModelVersion.model_id == model.id, AuditRun.kind == "reference").all()
    folders |= {(r.metrics or {}).get("folder") for r in runs}
    return {f for f in folders if f}
