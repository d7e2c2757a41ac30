"""Test helpers: registered operators with known passphrases, signed requests and approvals,
the subject key. Every test operator's passphrase is ``passphrase_of(name)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import operators
from storage import requests as reqs
from storage.models import ErasureRequest, Operator
from storage.subject_key import subject_key
from storage.workspace import Workspace

ADMIN = "admin"


def passphrase_of(name: str) -> str:
    return f"{name} passphrase"


def ensure_operator(session: Session, name: str) -> None:
    """Register ``name`` (added by ``admin``, who is registered first) unless already there."""
    if session.get(Operator, name) is not None:
        return
    if not operators.has_operators(session):
        operators.add_operator(session, ADMIN, passphrase_of(ADMIN), ADMIN)
        if name == ADMIN:
            return
    adder = ADMIN if session.get(Operator, ADMIN) is not None else _any_operator(session)
    operators.add_operator(session, name, passphrase_of(name), adder, passphrase_of(adder))


def _any_operator(session: Session) -> str:
    """A registered test operator (a workspace built through the CLI bootstraps its own)."""
    return session.scalars(select(Operator.name).order_by(Operator.name)).first()


def create_request(session: Session, *, operator: str, **kwargs: Any) -> ErasureRequest:
    """``storage.requests.create_request`` by ``operator`` (registered on the fly), who proves
    the test passphrase: the request's requester is proven, as four-eyes asks."""
    ensure_operator(session, operator)
    return reqs.create_request(session, operator=operator, passphrase=passphrase_of(operator),
                               **kwargs)


def approve(session: Session, request_id: int, operator: str) -> ErasureRequest:
    """Approve as ``operator`` (registered on the fly), proving the test passphrase."""
    ensure_operator(session, operator)
    return reqs.approve(session, request_id, operator, passphrase_of(operator))


def reject(session: Session, request_id: int, operator: str, reason: str) -> ErasureRequest:
    ensure_operator(session, operator)
    return reqs.reject(session, request_id, operator, reason, passphrase_of(operator))


def key_of(workspace: Workspace | Path) -> bytes:
    """The subject key of a workspace (or of the workspace folder at a path)."""
    if isinstance(workspace, Workspace):
        return subject_key(workspace.keys_dir)
    return subject_key(Path(workspace) / "keys")


def cli_env(operator: str) -> dict[str, str]:
    """Environment for a CLI subprocess acting as ``operator``."""
    return {"UNPROMPT_OPERATOR_PASSPHRASE": passphrase_of(operator)}


def new_env(name: str) -> dict[str, str]:
    """Environment for `operators add NAME` (the new operator's passphrase)."""
    return {"UNPROMPT_NEW_OPERATOR_PASSPHRASE": passphrase_of(name)}


def approved_request(root: Path, person: str, model_name: str = "crm") -> int:
    """An approved request (ann files, bob approves) to forget ``person`` of a model."""
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            request = create_request(session, operator="ann", model_name=model_name,
                                     subject=person, legal_basis="GDPR Art. 17",
                                     subject_key=key_of(ws))
            approve(session, request.id, "bob")
            return request.id
    finally:
        ws.close()
