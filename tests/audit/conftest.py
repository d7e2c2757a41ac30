"""Audit fixtures: one torch thread, tiny digits models, workspaces built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.jobs import run_job
from tests import approvals

# A tiny ViT on 8x8 digits (four 4x4 patches): trains in a few seconds on one thread.
TINY = {"dataset": "digits", "epochs": 5, "patch_size": 4, "augment": 0, "seed": 0,
        "overrides": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}}
# Small audits: few samples per class, one relearn seed, two relearn epochs, and no second
# retrain reference (the session's `audited` run trains one: it is the noise floor)
QUICK = {"per_class": 60, "relearn_seeds": 1, "relearn_epochs": 2, "twin": False}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with model 'demo' trained (TINY, by alice), once per session: the audit
    tests and the certificate chain (tests/reports/chain.py) copy it. Never change it."""
    import torch

    from engine.image_jobs import train_model_job

    root = tmp_path_factory.getbasetemp() / "trained-demo" / "ws"
    if not (root.parent / "done").exists():
        shutil.rmtree(root.parent, ignore_errors=True)
        root.parent.mkdir(parents=True)
        torch.set_num_threads(1)
        run_job(train_model_job(root, name="demo", operator="alice", **TINY))
        (root.parent / "done").touch()
    return root


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the trained model 'demo' (nothing forgotten)."""
    return trained_demo(tmp_path_factory)


@pytest.fixture(scope="session")
def audited(tmp_path_factory: pytest.TempPathFactory, trained_root: Path) -> dict:
    """Class 3 forgotten under an approved request, then audited with every option."""
    from engine.audit.job import audit_job
    from engine.forget import forget_job
    from storage.workspace import Workspace

    root = tmp_path_factory.mktemp("audit-done") / "ws"
    shutil.copytree(trained_root, root)
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        request = approvals.create_request(session, model_name="demo", classes=["3"],
                                      subject_key=approvals.key_of(ws),
                                      subject="subject-17", legal_basis="GDPR Art. 17(1)(b)",
                                      operator="alice")
        approvals.approve(session, request.id, "bob")
        request_id = request.id
    ws.close()
    run_job(forget_job(root, model_name="demo", classes=["3"], operator="alice",
                       request=request_id))
    progress: list = []
    result = run_job(audit_job(root, "demo", reference=True, lira=2, relearn=True,
                               operator="carol", **{**QUICK, "twin": True}), progress.append)
    return {"root": root, "result": result, "request": request_id, "progress": progress}


@pytest.fixture()
def audited_root(audited: dict, tmp_path: Path) -> Path:
    """A private copy of the audited workspace."""
    root = tmp_path / "ws-copy"
    shutil.copytree(audited["root"], root)
    return root
