"""A workspace with one image model, 'shop' (classes shirt, shoe, bag), for request tests."""

from __future__ import annotations

import pytest

from storage.models import ClassEntry, Model
from storage.workspace import Workspace


@pytest.fixture()
def shop_ws(workspace: Workspace) -> Workspace:
    with workspace.sessions.begin() as session:
        model = Model(name="shop", kind="image", backbone="vit", training_mode="full")
        session.add(model)
        session.flush()
        for i, name in enumerate(["shirt", "shoe", "bag"]):
            session.add(ClassEntry(model_id=model.id, label_index=i, display_name=name))
    return workspace
