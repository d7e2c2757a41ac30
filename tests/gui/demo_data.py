"""A small registry for GUI tests and screenshots: two models and requests in every state."""

from __future__ import annotations

import datetime as dt

from storage import requests as reqs
from storage.models import ClassEntry, ForgetRule, Model, utcnow
from storage.workspace import Workspace
from tests import approvals

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat"]


def add_models(ws: Workspace) -> None:
    """An image model 'fashion-vit' with five classes and an LLM 'smollm2' with one rule."""
    with ws.sessions.begin() as session:
        image = Model(name="fashion-vit", kind="image", backbone="vit_tiny_patch16_224",
                      training_mode="isolated")
        llm = Model(name="smollm2", kind="llm", backbone="SmolLM2-135M-Instruct")
        session.add_all([image, llm])
        session.flush()
        for i, name in enumerate(CLASSES):
            session.add(ClassEntry(model_id=image.id, label_index=i, display_name=name))
        session.add(ForgetRule(model_id=llm.id, name="harry-potter",
                               description="the Harry Potter books"))


def new_request(ws: Workspace, operator: str = "alice", days_ago: float = 0,
                **kw: object) -> int:
    args = {"model_name": "fashion-vit", "classes": ["coat"], "subject": "jane@example.org",
            "legal_basis": "GDPR Art. 17(1)(b): consent withdrawn", "operator": operator,
            "received_at": utcnow() - dt.timedelta(days=days_ago), **kw}
    with ws.sessions.begin() as session:
        return approvals.create_request(session, subject_key=approvals.key_of(ws), **args).id


def add_requests(ws: Workspace) -> dict[str, int]:
    """One request per situation an operator meets; returns their ids by situation."""
    ids = {
        "overdue": new_request(ws, days_ago=33, classes=["dress"]),
        "at_risk": new_request(ws, days_ago=26, classes=["pullover", "coat"]),
        "approved": new_request(ws, days_ago=9, classes=["trouser"]),
        "rejected": new_request(ws, days_ago=6, model_name="smollm2", classes=None,
                                rule="harry-potter", legal_basis="GDPR Art. 17(1)(a)"),
        "executed": new_request(ws, days_ago=14, classes=["t-shirt"]),
        "received": new_request(ws, days_ago=1, operator="bob"),
    }
    with ws.sessions.begin() as session:
        approvals.approve(session, ids["approved"], "carol")
        approvals.reject(session, ids["rejected"], "carol", "subject could not be identified")
        executed = approvals.approve(session, ids["executed"], "carol")
        reqs.mark_executed(session, executed, "alice", "exact", {"version": 2})
    return ids


def seed(ws: Workspace) -> dict[str, int]:
    add_models(ws)
    return add_requests(ws)
