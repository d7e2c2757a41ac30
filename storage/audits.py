"""AuditRun rows: image audits and cached retrain references (docs/design.md sections 3, 5).

Two kinds of row share the ``audit_runs`` table:
- ``image``: one erasure audit of a model version; ``metrics`` and ``curves`` hold the
  section-5 figures and chart data; attached to the erasure requests it verifies;
- ``reference``: a cached retrain reference (the same configuration trained without the
  forgotten classes). ``config`` holds its cache ``key``, ``forgotten`` and ``retained``
  class ids; ``metrics`` holds its artifact hashes (``shared_artifact``,
  ``class_artifacts``), training ``seconds``, ``test_accuracy`` and ``status``
  (``stored`` / ``retired``). It has no artifact of a forgotten class: it never had one.
Every function runs inside the caller's ``with Session.begin()`` and logs what it changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog
from storage.errors import NotFoundError
from storage.models import AuditRun, ErasureRequest, Model, ModelVersion
from storage.registry import get_model
from storage.requests import mark_verified

IMAGE_KIND, REFERENCE_KIND = "image", "reference"
PEOPLE_KIND = "guard"  # storage.rule_audits.GUARD_AUDIT_KIND: a rule audit, here of a person


def record_audit(session: Session, *, version_id: int, config: dict[str, Any],
                 metrics: dict[str, Any], curves: dict[str, Any], operator: str,
                 requests: list[ErasureRequest] | None = None) -> AuditRun:
    """Store an image audit, log it, and mark the requests it verifies as verified."""
    requests = [r for r in requests or [] if r.status in ("executed", "verified")]
    run = AuditRun(version_id=version_id, kind=IMAGE_KIND, config=config, metrics=metrics,
                   curves=curves, request_id=requests[-1].id if requests else None)
    session.add(run)
    session.flush()
    version = session.get(ModelVersion, version_id)
    auditlog.append(session, operator, "audit.recorded", {
        "audit_run": run.id, "model": version.model.name, "version": version.number,
        "erasure": metrics.get("erasure"), "mia_efficacy": metrics.get("mia_efficacy"),
        "forget_distinguishability_auc": metrics.get("forget_distinguishability_auc"),
        "requests": [r.id for r in requests]})
    for request in requests:
        mark_verified(session, request, operator, run.id)
    return run


def forget_requests(session: Session, model: Model) -> list[ErasureRequest]:
    """The erasure requests under which classes of ``model`` were forgotten, oldest first."""
    ids = {c.request_id for c in model.classes if c.status == "forgotten" and c.request_id}
    found = [session.get(ErasureRequest, i) for i in ids]
    return sorted(found, key=lambda r: (r.executed_at or r.received_at, r.id))


def record_reference(session: Session, *, version_id: int, config: dict[str, Any],
                     metrics: dict[str, Any], operator: str) -> AuditRun:
    """Record a freshly trained retrain reference (its artifacts are already stored)."""
    run = AuditRun(version_id=version_id, kind=REFERENCE_KIND, config=config,
                   metrics={**metrics, "status": "stored"}, curves={})
    session.add(run)
    session.flush()
    auditlog.append(session, operator, "audit.reference_trained", {
        "reference_run": run.id, "key": config.get("key"),
        "forgotten": config.get("forgotten"), "shared_artifact": metrics["shared_artifact"],
        "class_artifacts": metrics["class_artifacts"]})
    return run


def keep_reference_relearn(session: Session, run_id: int, key: str,
                           result: dict[str, Any]) -> None:
    """Keep a stored reference's relearn-attack figures under their recipe ``key``
    (docs/design.md section 15): a later audit with the same attack reads them. Derived
    figures of a row already logged: no registry change, no log entry."""
    run = session.get(AuditRun, run_id)
    if run is None or run.kind != REFERENCE_KIND or run.metrics.get("status") != "stored":
        return
    run.metrics = {**run.metrics, "relearn": {**(run.metrics.get("relearn") or {}),
                                              key: result}}


def reference_relearn(session: Session, run_id: int, key: str) -> dict[str, Any] | None:
    """The relearn figures kept with a stored reference under ``key``, if any."""
    run = session.get(AuditRun, run_id)
    if run is None or run.kind != REFERENCE_KIND or run.metrics.get("status") != "stored":
        return None
    return (run.metrics.get("relearn") or {}).get(key)


def references(session: Session, model: Model) -> list[AuditRun]:
    """Stored (not retired) reference rows of any version of ``model``."""
    version_ids = [v.id for v in model.versions]
    rows = session.scalars(select(AuditRun).where(AuditRun.kind == REFERENCE_KIND,
                                                  AuditRun.version_id.in_(version_ids)))
    return [r for r in rows if r.metrics.get("status") == "stored"]


def find_reference(session: Session, model: Model, key: str) -> AuditRun | None:
    """The cached reference with this cache key, if one is stored."""
    return next((r for r in references(session, model) if r.config.get("key") == key), None)


def stale_references(session: Session, model: Model) -> list[AuditRun]:
    """References that learned a class the model has since forgotten: they hold
    knowledge of it and must go (``retire_reference``)."""
    forgotten = {c.label_index for c in model.classes if c.status == "forgotten"}
    return [r for r in references(session, model)
            if forgotten & set(r.config.get("retained", []))]


def retire_learned(session: Session, model_names: list[str], removed: list[str],
                   operator: str) -> tuple[list[int], list[str]]:
    """At a forget: retire every reference that learned a class now forgotten by one of
    ``model_names``, or that holds one of the ``removed`` bytes; return the retired
    reference ids and their artifacts that nothing else uses (to purge with the forget)."""
    stale = [r for name in model_names for r in stale_references(session,
                                                                  get_model(session, name))]
    gone = set(removed)
    stale += [r for r in session.scalars(select(AuditRun).where(
        AuditRun.kind == REFERENCE_KIND)) if r.metrics.get("status") == "stored"
        and gone & {r.metrics["shared_artifact"], *r.metrics["class_artifacts"].values()}]
    retired, doomed = [], []
    for run in {r.id: r for r in stale}.values():
        doomed += retire_reference(session, run, operator,
                                   "it learned a class that is being forgotten")
        retired.append(run.id)
    return retired, list(dict.fromkeys(doomed))


def retire_reference(session: Session, run: AuditRun, operator: str, reason: str) -> list[str]:
    """Mark a reference retired; return its artifacts that nothing else uses (to purge)."""
    own = [run.metrics["shared_artifact"], *run.metrics["class_artifacts"].values()]
    in_use = artifacts_in_use(session, exclude=run.id)
    doomed = [sha for sha in dict.fromkeys(own) if sha not in in_use]
    run.metrics = {**run.metrics, "status": "retired"}
    auditlog.append(session, operator, "audit.reference_retired",
                    {"reference_run": run.id, "reason": reason, "purged_artifacts": doomed})
    return doomed


def artifacts_in_use(session: Session, exclude: int | None = None) -> set[str]:
    """Artifacts a loadable version or a stored reference (but ``exclude``) points to."""
    used: set[str] = set()
    for version in session.scalars(select(ModelVersion).where(ModelVersion.status != "purged")):
        used.add(version.shared_artifact)
        used.update(version.class_artifacts.values())
    for run in session.scalars(select(AuditRun).where(AuditRun.kind == REFERENCE_KIND)):
        if run.id != exclude and run.metrics.get("status") == "stored":
            used.add(run.metrics["shared_artifact"])
            used.update(run.metrics["class_artifacts"].values())
    return used


def audit_dict(session: Session, run: AuditRun, curves: bool = False) -> dict[str, Any]:
    """A plain description of an image audit (its curves only when asked)."""
    version = session.get(ModelVersion, run.version_id)
    out = {"id": run.id, "model": version.model.name, "version": version.number,
           "kind": run.kind, "created_at": run.created_at.isoformat(), "config": run.config,
           "metrics": run.metrics, "request": run.request_id}
    return {**out, "curves": run.curves} if curves else out


def list_audits(session: Session, model_name: str | None = None) -> list[dict[str, Any]]:
    """Image audits, newest first, optionally of one model."""
    query = select(AuditRun).where(AuditRun.kind == IMAGE_KIND).order_by(AuditRun.id.desc())
    if model_name is not None:
        ids = [v.id for v in get_model(session, model_name).versions]
        query = query.where(AuditRun.version_id.in_(ids))
    return [audit_dict(session, run) for run in session.scalars(query)]


def get_audit(session: Session, audit_id: int, curves: bool = True) -> dict[str, Any]:
    run = session.get(AuditRun, int(audit_id))
    if run is None or run.kind != IMAGE_KIND:
        raise NotFoundError(f"no audit run {audit_id}")
    return audit_dict(session, run, curves)


def latest_audit(session: Session, version_id: int) -> AuditRun | None:
    """The newest image audit of a version (what a certificate quotes)."""
    return session.scalars(select(AuditRun).where(
        AuditRun.kind == IMAGE_KIND, AuditRun.version_id == version_id
    ).order_by(AuditRun.id.desc())).first()



# -- the people audits of fine-tuned language models (docs/design.md section 14) ---------

def people_audits(session: Session, model_name: str) -> list[dict[str, Any]]:
    """`guard eval` runs of a person's rule (they carry TOFU / MUSE figures), newest first."""
    ids = [v.id for v in get_model(session, model_name).versions]
    query = select(AuditRun).where(AuditRun.kind == PEOPLE_KIND, AuditRun.version_id.in_(ids)
                                   ).order_by(AuditRun.id.desc())
    return [audit_dict(session, run) for run in session.scalars(query)
            if (run.metrics or {}).get("subject")]


def get_people_audit(session: Session, audit_id: int) -> dict[str, Any]:
    run = session.get(AuditRun, int(audit_id))
    if run is None or run.kind != PEOPLE_KIND or not (run.metrics or {}).get("subject"):
        raise NotFoundError(f"no audit run {audit_id} of a person's forget rule")
    return audit_dict(session, run, curves=True)
