"""What a certificate says about a request a retrain made exact (docs/design.md section 18).

Before the retrain, a request's certificate describes the forget (prompt deletion,
approximate, with the measured residual). After it, a new certificate describes the
retrained version: exact, every earlier version purged, the retrain's residual scan.
The first one keeps verifying; ``verify`` names the later one that supersedes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.certificates import certificates_of
from storage.errors import RefusedError
from storage.models import AuditRun, ErasureRequest, Model, ModelVersion

METHOD_NAME = "Retrain without the erased classes (after class prompt deletion)"
RETRAIN_METHOD = ("The model was retrained from its non-erasable starting point without the "
                  "erased {what}; the retrained version replaced the live one, and every "
                  "earlier version, whose weights learned from the erased data, was purged.")


def retrained(request: ErasureRequest) -> bool:
    """Whether a retrain made this request exact (its result names the new version)."""
    return request.exact_at is not None and "version" in (request.result.get("retrain") or {})


def recertifiable(session: Session, request: ErasureRequest) -> bool:
    """A certified request may be certified again once it became exact after its last
    certificate (the new one says exact; the old one is superseded, still valid)."""
    issued = certificates_of(session, request.id)
    return bool(issued) and retrained(request) and request.exact_at > issued[-1].created_at


def check_retrain_scanned(request: ErasureRequest) -> None:
    if "residual_scan" not in request.result["retrain"]:
        raise RefusedError(f"request {request.id} has no recorded residual scan of its "
                           "retrain yet (it was interrupted); open the workspace again to "
                           "finish it, then certify")


def versions(session: Session, model: Model, request: ErasureRequest
             ) -> tuple[ModelVersion | None, ModelVersion]:
    """The version the forget started from and the retrained version."""
    by_number = {v.number: v for v in model.versions}
    after = by_number[request.result["retrain"]["version"]]
    forgotten = by_number.get(request.result.get("version"))
    parent = forgotten.parent_id if forgotten is not None else None
    before = session.get(ModelVersion, parent) if parent else None
    return before, after


def latest_audit_of(session: Session, version: ModelVersion) -> AuditRun | None:
    """Only an audit of the retrained version speaks for it."""
    return session.scalars(select(AuditRun).where(
        AuditRun.kind == "image", AuditRun.version_id == version.id
    ).order_by(AuditRun.id.desc())).first()


def purge(request: ErasureRequest, rows: Any) -> dict[str, Any]:
    """The forget's purge and the retrain's, together; ``rows(sha)`` reads the tombstone."""
    shas = list(dict.fromkeys([*request.result.get("purged", []),
                               *request.result["retrain"].get("purged", [])]))
    found = [rows(sha) for sha in shas]
    return {"purged": shas, "complete": all(r is None or r.status == "purged" for r in found)}


def method_text(request: ErasureRequest) -> str:
    if "subject_records" in request.scope:
        return SUBJECT_METHOD
    names = [c["name"] for c in request.scope.get("classes", [])]
    return RETRAIN_METHOD.format(what="classes" if len(names) > 1 else "class")


SUBJECT_METHOD = ("The language model was fine-tuned again from its base model, with the same "
                  "settings, on the records of everyone but the erased person; the new "
                  "version replaced the live one, every earlier version's weights, which "
                  "learned from the person's records, were destroyed, and the person's "
                  "stored records and forget-rule classifier were purged. The forget rule "
                  "was retired: the retrained model never saw the records.")
SUBJECT_METHOD_NAME = ("Fine-tune again from the base model without the person's records "
                       "(after suppression by a forget rule)")


def gather_subject(session: Session, request: ErasureRequest) -> dict[str, Any]:
    """The facts of a person's request on a fine-tuned language model that a retrain made
    exact (docs/design.md section 18): no guard (the rule was retired), the earlier weights
    and the person's records purged, the retrain's residual scan."""
    model = session.get(Model, request.model_id)
    before, after = versions(session, model, request)
    before = before or _version_of(model, after.parent_id)
    earlier = [v.metrics.get("weights_sha256") for v in model.versions
               if v.number < after.number and v.metrics.get("weights_sha256")]
    shas = list(dict.fromkeys([*request.result["retrain"].get("purged", []), *earlier]))
    return {
        "method": {"name": SUBJECT_METHOD_NAME, "training_mode": model.training_mode,
                   "description": method_text(request)},
        "erasure": {"kind": "exact", "residual": None, "mechanism": "retrain",
                    "weights_changed": True},
        "model": {"name": model.name, "kind": model.kind, "backbone": model.backbone,
                  "version_before": before.number if before else None,
                  "version_after": after.number},
        "artifacts": {"before": _weights(before), "after": _weights(after)},
        "purge": {"purged": shas, "complete": True},
        "residual_scan": request.result["retrain"]["residual_scan"],
        "audit": None,
    }


def _version_of(model: Model, version_id: int | None) -> ModelVersion | None:
    return next((v for v in model.versions if v.id == version_id), None)


def _weights(version: ModelVersion | None) -> dict[str, str]:
    sha = (version.metrics.get("weights_sha256") if version is not None else None) or ""
    return {"weights": sha} if sha else {}
