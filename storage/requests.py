"""Erasure requests and their lifecycle (docs/design.md section 3).

received -> approved -> executed -> verified -> certified, or rejected. The data subject's
reference is stored only as an HMAC-SHA256 under the workspace's subject key (kept in
``keys/``, storage/subject_key.py); requests recorded before that keep their salted sha256
and say so in ``subject_scheme``. Approvals and rejections are signed by an operator who
proved their passphrase (storage/operators.py, storage/decisions.py); so is the recording
of a request when four-eyes is on, so that an approver is told apart from a requester who
proved who they are. Every transition writes the audit log in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import auditlog, decisions, operators
from storage.erasure_kinds import EXACT, RETRAINED, request_kind
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ErasureRequest, ForgetRule, Model, utcnow
from storage.registry import get_model
from storage.settings import get_setting
from storage.subject_key import keyed_hash

DUE_AFTER = dt.timedelta(days=30)  # GDPR Art. 12(3)
AT_RISK_WITHIN = dt.timedelta(days=7)
OPEN_STATES = ("received", "approved")


SALTED, KEYED = "salted-sha256", "hmac-sha256"


def hash_subject(subject: str, salt: str) -> str:
    """The scheme of requests recorded before migration 0003 (kept to read them)."""
    return hashlib.sha256(f"{salt}:{subject}".encode()).hexdigest()


def subject_matches(request: ErasureRequest, subject: str, key: bytes) -> bool:
    """Whether ``request`` is about ``subject``, whichever scheme its hash uses."""
    if request.subject_scheme == SALTED:
        return request.subject_hash == hash_subject(subject, request.subject_salt)
    return request.subject_hash == keyed_hash(subject, key)


def requests_for_subject(session: Session, subject: str, key: bytes) -> list[int]:
    """Ids of every request about ``subject`` (to find duplicates)."""
    return [r.id for r in session.scalars(select(ErasureRequest).order_by(ErasureRequest.id))
            if subject_matches(r, subject, key)]


def create_request(session: Session, *, model_name: str, subject: str, legal_basis: str,
                   operator: str, subject_key: bytes, passphrase: str | None = None,
                   classes: list[str] | None = None, rule: str | None = None,
                   received_at: dt.datetime | None = None) -> ErasureRequest:
    """Record a new request; the scope is classes of an image model or one forget rule.

    ``subject_key`` is the workspace's key (``storage.subject_key.subject_key(keys_dir)``).
    With four-eyes on, ``operator`` must be registered and prove ``passphrase``: the log
    entry is then signed, so that an approver can be told apart from the requester. With
    four-eyes off and no passphrase, the name is taken as given and logged as unproven.
    """
    if not subject.strip():
        raise UnpromptError("the data-subject reference is empty")
    if not legal_basis.strip():
        raise UnpromptError("the legal basis is empty (e.g. 'GDPR Art. 17(1)(b)')")
    model = get_model(session, model_name)
    scope = _scope(session, model, classes or [], rule, subject)
    key = _requester_key(session, operator, passphrase)
    received = received_at or utcnow()
    request = ErasureRequest(received_at=received, due_at=received + DUE_AFTER,
                             subject_hash=keyed_hash(subject, subject_key), subject_salt="",
                             subject_scheme=KEYED,
                             legal_basis=legal_basis.strip(), scope=scope, model_id=model.id,
                             status="received", requested_by=operator)
    session.add(request)
    session.flush()
    logged = {"scope": scope, "due_at": request.due_at.isoformat()}
    if key is None:
        auditlog.append(session, operator, decisions.RECEIVED,
                        {"request": request.id, **logged, "requester": "unproven"})
    else:
        decisions.append_signed(session, key, request, operator, decisions.RECEIVED,
                                {**logged, "requester": "proven"})
    return request


def requester_must_prove(session: Session, operator: str) -> bool:
    """Whether recording a request needs ``operator``'s passphrase (four-eyes is on); an
    unregistered name is refused then, before any passphrase is asked."""
    if not get_setting(session, "four_eyes"):
        return False
    with _as_requester():
        operators.require_registered(session, operator)
    return True


def _requester_key(session: Session, operator: str, passphrase: str | None) -> bytes | None:
    """The requester's signing key; None only when four-eyes is off and none was given."""
    if requester_must_prove(session, operator):
        with _as_requester():
            return operators.authenticate(session, operator, passphrase)
    return operators.authenticate(session, operator, passphrase) if passphrase else None


@contextmanager
def _as_requester() -> Iterator[None]:
    """Say why a requester is asked to prove who they are."""
    try:
        yield
    except operators.AuthenticationError as exc:
        raise operators.AuthenticationError(
            f"four-eyes is on, so whoever records a request must prove who they are: {exc}"
        ) from None


def _scope(session: Session, model: Model, classes: list[str], rule: str | None,
           subject: str = "") -> dict[str, Any]:
    from storage import finetunes

    if not classes and not rule and model.training_mode == finetunes.FINETUNED:
        return finetunes.subject_scope(session, model, subject)  # the person's own rule
    if bool(classes) == bool(rule):
        raise UnpromptError("a request names either classes (--class) or one forget rule "
                            "(--rule)")
    if rule:
        if model.kind != "llm":
            raise UnpromptError(f"model {model.name!r} is not a language model; "
                                "name classes instead of a rule")
        found = session.scalars(select(ForgetRule).where(
            ForgetRule.model_id == model.id, ForgetRule.name == rule)).first()
        if found is None:
            raise NotFoundError(f"model {model.name!r} has no forget rule named {rule!r}")
        return {"model": model.name, "kind": "rule", "rule": rule}
    if model.kind != "image":
        raise UnpromptError(f"model {model.name!r} has no classes; name a rule instead")
    resolved = [resolve_class(model, c) for c in classes]
    return {"model": model.name, "kind": "classes",
            "classes": [{"index": e.label_index, "name": e.display_name} for e in resolved]}


def resolve_class(model: Model, key: str):  # noqa: ANN201 - ClassEntry
    """A class by display name or label index."""
    for entry in model.classes:
        if entry.display_name == key or str(entry.label_index) == str(key):
            return entry
    names = ", ".join(e.display_name for e in model.classes)
    raise NotFoundError(f"model {model.name!r} has no class {key!r} (classes: {names})")


def get_request(session: Session, request_id: int | str, *, lock: bool = False
                ) -> ErasureRequest:
    """The request; ``lock`` holds its row until the transaction ends (SELECT ... FOR
    UPDATE on PostgreSQL), so that a decision on it cannot overwrite another's."""
    try:
        key = int(str(request_id).removeprefix("R").removeprefix("-"))
    except ValueError:
        raise NotFoundError(f"{request_id!r} is not a request id (a number)") from None
    request = session.get(ErasureRequest, key, with_for_update=lock or None)
    if request is None:
        raise NotFoundError(f"no erasure request {key} (see `request list`)")
    return request


def approve(session: Session, request_id: int | str, operator: str,
            passphrase: str | None) -> ErasureRequest:
    """Approve as ``operator``, who proves their passphrase and signs the decision."""
    request = check_approvable(session, request_id, operator, lock=True)
    key = operators.authenticate(session, operator, passphrase)
    request.status, request.approved_by, request.approved_at = "approved", operator, utcnow()
    decisions.append_signed(session, key, request, operator, "request.approved", {})
    return request


def check_approvable(session: Session, request_id: int | str, operator: str, *,
                     lock: bool = False) -> ErasureRequest:
    """Refuse, before any passphrase is asked, an approval that cannot succeed."""
    request = get_request(session, request_id, lock=lock)
    _require(request, ("received",), "approved")
    if get_setting(session, "four_eyes"):
        if operator == request.requested_by:
            raise RefusedError(f"four-eyes is on: request {request.id} was created by "
                               f"{operator} and must be approved by a different operator")
        _require_proven_requester(session, request)
    operators.require_registered(session, operator)
    return request


def _require_proven_requester(session: Session, request: ErasureRequest) -> None:
    """Four-eyes means nothing unless the requester, too, proved who they are."""
    problem = decisions.unproven_requester(session, request)
    if problem is not None:
        raise RefusedError(
            f"four-eyes is on: request {request.id} {problem}, so an approval cannot show "
            "that two people were involved; reject it and record it again as a registered "
            "operator who proves their passphrase (or turn four-eyes off to approve it "
            "as it is)")


def reject(session: Session, request_id: int | str, operator: str, reason: str,
           passphrase: str | None) -> ErasureRequest:
    """Reject as ``operator``, who proves their passphrase and signs the decision."""
    if not reason.strip():
        raise UnpromptError("a rejection needs a reason")
    request = get_request(session, request_id, lock=True)
    _require(request, OPEN_STATES, "rejected")
    key = operators.authenticate(session, operator, passphrase)
    request.status, request.rejected_reason = "rejected", reason.strip()
    request.rejected_at = utcnow()
    decisions.append_signed(session, key, request, operator, "request.rejected",
                            {"reason": reason.strip()})
    return request


def _require(request: ErasureRequest, states: tuple[str, ...], target: str) -> None:
    if request.status not in states:
        raise RefusedError(f"request {request.id} is {request.status}; it cannot be {target} "
                           f"(it must be {' or '.join(states)})")


def check_executable(session: Session, request: ErasureRequest, scope_kind: str) -> None:
    """Refuse to execute a request that is not approved or whose scope is of another kind."""
    _require(request, ("approved",), "executed")
    if request.scope.get("kind") != scope_kind:
        raise RefusedError(f"request {request.id} covers a {request.scope.get('kind')}, "
                           f"not {scope_kind}")


def mark_executed(session: Session, request: ErasureRequest, operator: str,
                  erasure_kind: str, result: dict[str, Any]) -> None:
    now = utcnow()
    request.status, request.executed_at, request.executed_by = "executed", now, operator
    request.erasure_kind, request.result = erasure_kind, result
    request.suppressed_at = now
    if erasure_kind in (EXACT, RETRAINED):
        request.exact_at = now
    auditlog.append(session, operator, "request.executed",
                    {"request": request.id, "erasure_kind": erasure_kind})


def mark_verified(session: Session, request: ErasureRequest, operator: str,
                  audit_run_id: int) -> None:
    _require(request, ("executed", "verified"), "verified")
    request.status, request.verified_at = "verified", utcnow()
    request.result = {**request.result, "audit_run": audit_run_id}
    auditlog.append(session, operator, "request.verified",
                    {"request": request.id, "audit_run": audit_run_id})


def mark_certified(session: Session, request: ErasureRequest, operator: str,
                   certificate_id: str) -> None:
    _require(request, ("executed", "verified", "certified"), "certified")
    request.status, request.certified_at = "certified", utcnow()
    auditlog.append(session, operator, "request.certified",
                    {"request": request.id, "certificate": certificate_id})


def request_dict(request: ErasureRequest, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    open_ = request.status in OPEN_STATES
    return {
        "id": request.id, "status": request.status, "scope": request.scope,
        "received_at": request.received_at.isoformat(), "due_at": request.due_at.isoformat(),
        "overdue": open_ and now > request.due_at,
        "at_risk": open_ and now <= request.due_at <= now + AT_RISK_WITHIN,
        "subject_hash": request.subject_hash, "subject_scheme": request.subject_scheme,
        "legal_basis": request.legal_basis, "requested_by": request.requested_by,
        "approved_by": request.approved_by,
        "rejected_reason": request.rejected_reason, "erasure_kind": request_kind(request),
        "executed_at": _iso(request.executed_at), "verified_at": _iso(request.verified_at),
        "certified_at": _iso(request.certified_at), "approved_at": _iso(request.approved_at),
        "rejected_at": _iso(request.rejected_at),
        "suppressed_at": _iso(request.suppressed_at), "exact_at": _iso(request.exact_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def list_requests(session: Session) -> list[dict[str, Any]]:
    """Every request, overdue first, then by due date."""
    rows = [request_dict(r) for r in session.scalars(select(ErasureRequest))]
    return sorted(rows, key=lambda r: (not r["overdue"], r["status"] not in OPEN_STATES,
                                       r["due_at"]))
