"""Registry side of the retrain follow-up (docs/design.md section 18).

A model whose forgets were not exact keeps every request it executed *suppressed* (the
class is unreachable) until a retrain makes it *exact*: the same configuration trained
from its non-erasable starting point without every forgotten class. The retrained model
is the cached retrain reference itself (an AuditRun of kind ``reference``), so promoting
it is a registry change only: one transaction makes its artifacts the live version,
marks every earlier version purged and their artifacts for purging, retires every
reference that learned a forgotten class, and marks the covered requests exact.
Every function runs inside the caller's ``with Session.begin()`` and logs what it changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog, operators
from storage.audits import artifacts_in_use, retire_reference, stale_references
from storage.erasure_kinds import RETRAINED
from storage.errors import RefusedError
from storage.models import AuditRun, ErasureRequest, Model, ModelVersion, utcnow
from storage.registry import live_version

DONE_STATES = ("executed", "verified", "certified")
HELD, ACCEPTED, REJECTED = "awaiting_decision", "accepted", "rejected"


def pending_requests(session: Session, model: Model) -> list[ErasureRequest]:
    """Executed requests on ``model`` that are not exact yet, oldest due first: class
    requests, and requests about a person of a fine-tuned language model (section 14)."""
    rows = session.scalars(select(ErasureRequest).where(
        ErasureRequest.model_id == model.id, ErasureRequest.exact_at.is_(None),
        ErasureRequest.status.in_(DONE_STATES)))
    return sorted((r for r in rows if retrainable(r.scope)), key=lambda r: (r.due_at, r.id))


def retrainable(scope: dict[str, Any]) -> bool:
    """A scope a retrain can make exact: classes, or one person's records."""
    return scope.get("kind") == "classes" or "subject_records" in scope


def check_pending(session: Session, model: Model, asked: list[int]) -> list[ErasureRequest]:
    """The requests a retrain covers; refuses when there is none, or when a named one is
    not pending on this model (with the reason)."""
    pending = pending_requests(session, model)
    ids = {r.id for r in pending}
    for rid in asked:
        row = session.get(ErasureRequest, rid)
        if row is None or row.model_id != model.id:
            raise RefusedError(f"request {rid} is not about model {model.name!r}")
        if rid not in ids:
            why = ("it is already exact" if row.exact_at else
                   f"it is {row.status}; only an executed request waits for a retrain")
            raise RefusedError(f"request {rid} needs no retrain: {why}")
    if not pending:
        raise RefusedError(f"model {model.name!r} has no request waiting for a retrain: every "
                           "executed request on it is exact already (or none was executed); "
                           "nothing to do")
    return pending


def earlier_artifacts(model: Model) -> list[str]:
    """Every artifact an earlier version of ``model`` lists (all learned from its data)."""
    shas = []
    for version in model.versions:
        shas += [version.shared_artifact, *version.class_artifacts.values()]
    return [s for s in dict.fromkeys(shas) if s]


def other_holders(session: Session, model: Model, shas: list[str]) -> list[str]:
    """Other models whose loadable versions hold one of ``shas`` (models trained alike)."""
    doomed, names = set(shas), set()
    for version in session.scalars(select(ModelVersion).where(
            ModelVersion.model_id != model.id, ModelVersion.status != "purged")):
        if doomed & {version.shared_artifact, *version.class_artifacts.values()}:
            names.add(version.model.name)
    return sorted(names)


def refuse_shared(session: Session, model: Model) -> None:
    """Purging bytes another model still serves would break it; say so before training."""
    names = other_holders(session, model, earlier_artifacts(model))
    if names:
        raise RefusedError(f"model {model.name!r} shares artifacts with {', '.join(names)} "
                           "(trained alike): retraining would have to purge bytes that model "
                           "still serves; forget and retrain it too, or retire it first")


def refuse_stale(model: Model, reference: AuditRun) -> None:
    """A class forgotten while the retrain ran (a forget interleaved with the long job) is
    in the retrained model: promoting it would bring the class back."""
    forgotten = {c.label_index: c.display_name for c in model.classes
                 if c.status == "forgotten"}
    learned = sorted(set(forgotten) & {int(c) for c in reference.config.get("retained", [])})
    if learned or reference.metrics.get("status") != "stored":
        names = ", ".join(repr(forgotten[c]) for c in learned) or "a class"
        raise RefusedError(f"the retrain of {model.name!r} stopped: {names} was forgotten "
                           "while it ran and the retrained model learned it, so nothing was "
                           "promoted; run the retrain again")


def commit_retrain(session: Session, model: Model, reference: AuditRun,
                   requests: list[ErasureRequest], operator: str,
                   metrics: dict[str, Any]) -> tuple[ModelVersion, list[str], list[int]]:
    """Promote the retrained reference: version v+1 (exact), every earlier version purged,
    their artifacts and every stale reference's marked for purging, requests exact.
    Returns the new version, the artifacts to purge and the references retired."""
    refuse_shared(session, model)
    refuse_stale(model, reference)
    old = live_version(session, model)
    earlier = earlier_artifacts(model)
    new = ModelVersion(model_id=model.id, number=old.number + 1, parent_id=old.id,
                       shared_artifact=reference.metrics["shared_artifact"],
                       class_artifacts=dict(reference.metrics["class_artifacts"]),
                       erasure_kind=RETRAINED, metrics=metrics)
    session.add(new)
    for version in model.versions:
        if version is not new:
            version.status = "purged"
    session.flush()
    retired, doomed = [], []
    for run in stale_references(session, model):
        doomed += retire_reference(session, run, operator,
                                   "it learned a class the retrained model forgot")
        retired.append(run.id)
    in_use = artifacts_in_use(session)
    doomed = [sha for sha in dict.fromkeys(earlier + doomed) if sha not in in_use]
    now = utcnow()
    for request in requests:
        mark_exact(session, request, operator, new.number, now)
    auditlog.append(session, operator, "model.retrained", {
        "model": model.name, "from_version": old.number, "to_version": new.number,
        "reference_run": reference.id, "shared_artifact": new.shared_artifact,
        "classes": sorted(int(k) for k in new.class_artifacts), "purged_artifacts": doomed,
        "references_retired": retired, "requests": [r.id for r in requests],
        "erasure_kind": "exact"})
    return new, doomed, retired


def mark_exact(session: Session, request: ErasureRequest, operator: str, version: int,
                now: Any) -> None:
    request.exact_at, request.erasure_kind = now, RETRAINED
    request.result = {**request.result,
                      "retrain": {"version": version, "exact_at": now.isoformat()}}
    auditlog.append(session, operator, "request.exact",
                    {"request": request.id, "version": version, "by": "retrain"})


def hold(session: Session, reference: AuditRun, operator: str,
         figures: dict[str, Any]) -> None:
    """A retrain too far below the live version waits for an operator's decision."""
    reference.metrics = {**reference.metrics, "retrain": {"status": HELD, **figures}}
    auditlog.append(session, operator, "model.retrain_held",
                    {"reference_run": reference.id, **figures})


def held_reference(session: Session, model: Model) -> AuditRun | None:
    """The stored reference of ``model`` whose retrain waits for a decision."""
    from storage.audits import references

    runs = [r for r in references(session, model)
            if (r.metrics.get("retrain") or {}).get("status") == HELD]
    return runs[-1] if runs else None


def decide_held(session: Session, model: Model, operator: str, passphrase: str | None,
                accept: bool, reason: str) -> dict[str, Any]:
    """An operator's signed decision on the retrain of ``model`` held for accuracy (the
    CLI's ``retrain N --accept/--reject`` and the Requests screen both call this)."""
    run = held_reference(session, model)
    if run is None:
        raise RefusedError(f"no retrain of {model.name!r} is waiting for a decision")
    return decide(session, run, operator, passphrase, accept, reason)


def decide(session: Session, reference: AuditRun, operator: str, passphrase: str | None,
           accept: bool, reason: str) -> dict[str, Any]:
    """Record an operator's signed decision on a held retrain."""
    held = reference.metrics.get("retrain") or {}
    if held.get("status") != HELD:
        raise RefusedError("no retrain of this model is waiting for a decision")
    if not reason.strip():
        raise RefusedError("a decision on a held retrain needs a reason")
    key = operators.authenticate(session, operator, passphrase)
    action = "model.retrain_accepted" if accept else "model.retrain_rejected"
    signed = {"action": action, "operator": operator, "at": utcnow().isoformat(),
              "reference_run": reference.id, "model": held.get("model"),
              "retained_live": held.get("retained_live"),
              "retained_retrain": held.get("retained_retrain"),
              "margin": held.get("margin"), "reason": reason.strip()}
    status = ACCEPTED if accept else REJECTED
    reference.metrics = {**reference.metrics, "retrain": {**held, "status": status,
                                                          "decided_by": operator}}
    auditlog.append(session, operator, action, {
        "reference_run": reference.id, "signed": signed,
        "signature": {"scheme": operators.SIGNATURE, "hmac": operators.sign(key, signed)}})
    return signed
