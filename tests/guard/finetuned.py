"""A fine-tuned language model with suppressed requests, shared by the retrain tests
(docs/design.md sections 14 and 18): built once per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.guard import subject_jobs as jobs
from engine.guard.people import generate, people, write_corpus
from engine.jobs import run_job
from storage import finetunes
from storage.workspace import Workspace
from tests import approvals

FAST = {"epochs": 1, "batch_size": 4, "device": "cpu"}
PEOPLE = people(generate(4, 2))


@pytest.fixture(scope="session")
def crm_suppressed(tmp_path_factory, tiny_model_dir, tiny_encoder_dir) -> Path:
    """'crm' fine-tuned on 4 people x 2 facts; the first two people's requests executed
    by their forget rules (suppressed, waiting for a retrain)."""
    folder = tmp_path_factory.mktemp("suppressed")
    corpus = write_corpus(generate(4, 2), folder / "people.jsonl")
    root = folder / "ws"
    run_job(jobs.finetune_model_job(root, corpus=str(corpus), name="crm", operator="ann",
                                    base=str(tiny_model_dir), **FAST))
    for person in PEOPLE[:2]:
        rid = request_about(root, person)
        run_job(jobs.forget_subject_job(root, request=rid, operator="bob",
                                        encoder=str(tiny_encoder_dir)))
    return root


def request_about(root: Path, person: str) -> int:
    """An approved request to forget ``person`` of 'crm'."""
    return approvals.approved_request(root, person)


def copy_workspace(old: Path, new: Path) -> Path:
    """A copy of the workspace whose weights folders are its own (the registry records
    paths)."""
    shutil.copytree(old, new)
    ws = Workspace.open(new)
    try:
        with ws.sessions.begin() as session:
            model = finetunes.finetuned_model(session, "crm")
            for version in model.versions:
                folder = version.metrics["folder"].replace(str(old), str(new))
                version.metrics = {**version.metrics, "folder": folder}
            model.config = {**model.config,
                            "spec": model.config["spec"].replace(str(old), str(new))}
    finally:
        ws.close()
    return new
