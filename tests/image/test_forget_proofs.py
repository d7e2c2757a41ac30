"""A forget's residual scan skips a large artifact only on the strength of a proof made
when it was stored, and still finds a forgotten class's bytes inside the shared artifact
(docs/design.md section 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import residual_scan
from engine.forget import _execute
from engine.forget_plan import make_plan
from engine.model_store import store_model
from engine.pfm import PreForgettableViT
from storage import scan_proofs
from storage.versions import NewModel, register_model
from storage.workspace import Workspace

TINY = {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}


@pytest.fixture(autouse=True)
def _every_artifact_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(residual_scan, "LARGE", 0)  # a tiny backbone stands for a large one
    monkeypatch.setattr(scan_proofs, "SETTLE_S", 0.05)


def _registered(root: Path, leak_class: int | None = None) -> tuple[Workspace, str]:
    """A random 4-class model in a new workspace; ``leak_class``'s prompt is copied into
    the backbone, as a bug that stored class bytes in the shared artifact would."""
    torch.manual_seed(0)
    model = PreForgettableViT(range(4), img_size=8, patch_size=4, in_chans=1,
                              mode="isolated", overrides=TINY)
    if leak_class is not None:
        with torch.no_grad():
            model.backbone.pos_embed[0, 0].copy_(model.class_parameters(leak_class)["prompt"])
    ws = Workspace.open(root)
    shared, classes = store_model(ws, model)
    with ws.sessions.begin() as session:
        register_model(session, NewModel(
            name="m", kind="image", backbone="vit", mode="isolated", dataset_ref={},
            config={}, shared_artifact=shared, class_artifacts=classes,
            class_names={c: f"c{c}" for c in classes}, metrics={}, erasure_kind="exact"),
            "alice")
    return ws, shared


def _forget(ws: Workspace, name: str) -> dict:
    plan = make_plan(ws, "m", [name], None)
    return _execute(ws, {**plan, "accuracy_before": {}}, "alice")["residual_scan"]


def test_a_forget_does_not_read_the_proven_shared_artifact(tmp_path: Path) -> None:
    ws, shared = _registered(tmp_path / "ws")
    try:
        scan = _forget(ws, "c1")
    finally:
        ws.close()
    size = (tmp_path / "ws" / "artifacts" / shared).stat().st_size
    assert scan["clean"] and scan["files_proven"] == 1 and scan["bytes_proven"] == size


def test_a_forgotten_class_left_in_the_shared_artifact_is_found(tmp_path: Path) -> None:
    ws, shared = _registered(tmp_path / "ws", leak_class=2)
    try:
        scan = _forget(ws, "c2")
    finally:
        ws.close()
    assert not scan["clean"] and scan["files_proven"] == 0
    assert f"artifacts/{shared}" in {hit["file"] for hit in scan["hits"]}
