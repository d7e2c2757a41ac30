"""A forget on an isolated-mode model is an ``isolated`` erasure (docs/design.md section
4.3): the result, the new version, the request and the statement say so, not ``exact``."""

from __future__ import annotations

from pathlib import Path

from cli.image_cmds import _render_forget
from engine.forget import forget_job
from engine.image_jobs import pretrain_backbone_job
from engine.jobs import run_job
from storage import requests as reqs
from storage.models import ModelVersion
from storage.workspace import Workspace
from tests import approvals
from tests.image.conftest import TINY, train_tiny

SMALL = {**TINY, "epochs": 1, "max_per_class": 10,
         "overrides": {"embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_ratio": 1.0}}


def _approved_request(root: Path) -> int:
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            request = approvals.create_request(
                session, model_name="demo", classes=["5"], subject="jane@example.org",
                subject_key=approvals.key_of(ws), legal_basis="GDPR Art. 17",
                operator="alice")
            approvals.approve(session, request.id, "bob")
            return request.id
    finally:
        ws.close()


def test_forget_on_an_isolated_model_records_isolated(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    run_job(pretrain_backbone_job(root, name="bb", operator="alice",
                                  **{**SMALL, "classes": ["0-4"]}))
    trained = train_tiny(root, mode="isolated", backbone_from="bb",
                         **{**SMALL, "classes": ["5-9"]})
    assert trained["erasure_kind"] == "isolated"
    request_id = _approved_request(root)
    result = run_job(forget_job(root, model_name="demo", classes=["5"], operator="alice",
                                request=request_id))
    assert result["erasure_kind"] == "isolated"
    assert result["erasure_statement"].startswith("Isolated erasure (isolated mode")
    assert "(isolated erasure)" in _render_forget(result)  # what the CLI prints
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            versions = session.query(ModelVersion).filter(ModelVersion.number == 2).all()
            assert [v.erasure_kind for v in versions] == ["isolated"]
            request = reqs.get_request(session, request_id)
            assert request.erasure_kind == "isolated"
            assert reqs.request_dict(request)["erasure_kind"] == "isolated"
    finally:
        ws.close()
