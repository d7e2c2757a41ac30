"""Every storage test runs on SQLite and on PostgreSQL (``registry_backend``, tests/conftest.py);
a workspace with one image model, 'shop' (classes shirt, shoe, bag), for request tests."""

from __future__ import annotations

import pytest

from storage.models import ClassEntry, Model
from storage.workspace import Workspace


@pytest.fixture(autouse=True)
def _both_backends(registry_backend: str) -> str:
    return registry_backend


@pytest.fixture()
def shop_ws(workspace: Workspace) -> Workspace:
    with workspace.sessions.begin() as session:
        model = Model(name="shop", kind="image", backbone="vit", training_mode="full")
        session.add(model)
        session.flush()
        for i, name in enumerate(["shirt", "shoe", "bag"]):
            session.add(ClassEntry(model_id=model.id, label_index=i, display_name=name))
    return workspace
