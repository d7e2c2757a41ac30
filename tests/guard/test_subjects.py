"""`lm finetune` against a workspace with the tiny model: versions, records by subject,
cancel, bad input (docs/design.md section 12)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.guard import subject_jobs as jobs
from engine.guard.people import generate, people, write_corpus
from engine.jobs import Cancelled, CancelToken, run_job
from storage import finetunes
from storage.errors import RefusedError, UnpromptError
from storage.models import Artifact, AuditLogEntry, Model
from storage.workspace import Workspace

FAST = {"epochs": 1, "batch_size": 4, "device": "cpu"}


@pytest.fixture()
def corpus(tmp_path):
    return str(write_corpus(generate(3, 2), tmp_path / "people.jsonl"))


def test_finetune_records_versions_and_subjects(tmp_path, corpus, tiny_model_dir):
    ws_dir = tmp_path / "ws"
    first = run_job(jobs.finetune_model_job(ws_dir, corpus=corpus, name="crm", operator="ann",
                                            base=str(tiny_model_dir), **FAST))
    assert first["version"] == 1 and first["people"] == 3 and first["records"] == 6
    gone = people(generate(3, 2))[0]
    second = run_job(jobs.finetune_model_job(ws_dir, corpus=corpus, name="crm", operator="ann",
                                             base=str(tiny_model_dir), exclude=[gone], **FAST))
    assert second["version"] == 2 and second["people"] == 2
    ws = Workspace.open(ws_dir)
    try:
        with ws.sessions() as session:
            model = finetunes.finetuned_model(session, "crm")
            assert [(v.number, v.status) for v in model.versions] == [(1, "superseded"),
                                                                     (2, "live")]
            assert model.config["spec"] == second["folder"]
            assert gone not in finetunes.subjects_of(session, model)
            actions = session.scalars(select(AuditLogEntry.action)).all()
        assert actions.count("model.finetuned") == 2
        back = jobs.subject_records(ws, "crm")
        assert sorted(r.person for r in back) == sorted(people(generate(3, 2))[1:] * 2)
    finally:
        ws.close()
    from engine.guard.lm import load_language_model
    assert load_language_model(second["folder"], "cpu").source == "folder"


def test_cancel_stores_nothing(tmp_path, corpus, tiny_model_dir):
    token = CancelToken()
    job = jobs.finetune_model_job(tmp_path / "ws", corpus=corpus, name="crm", operator="ann",
                                  base=str(tiny_model_dir), cancel=token, **FAST)
    with pytest.raises(Cancelled):
        for progress in job:
            if "step" in progress.message:
                token.set()
    ws = Workspace.open(tmp_path / "ws")
    try:
        with ws.sessions() as session:
            assert session.scalars(select(Model)).first() is None
            assert session.scalars(select(Artifact)).first() is None
    finally:
        ws.close()
    assert not list((tmp_path / "ws").glob(f"{jobs.MODELS_DIR}/*/v*"))


def test_bad_input_refused_before_loading(tmp_path, corpus):
    base = str(tmp_path / "absent-model")  # never loaded: every refusal comes first
    with pytest.raises(UnpromptError, match="'Nobody' is not a person of the corpus"):
        run_job(jobs.finetune_model_job(tmp_path / "ws", corpus=corpus, name="crm",
                                        operator="ann", base=base, exclude=["Nobody"]))
    with pytest.raises(UnpromptError, match="--mode must be one of"):
        run_job(jobs.finetune_model_job(tmp_path / "ws", corpus=corpus, name="crm",
                                        operator="ann", base=base, mode="qlora"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"person": "A"}\n', encoding="utf-8")
    with pytest.raises(UnpromptError, match="bad.jsonl line 1: missing 'fact'"):
        run_job(jobs.finetune_model_job(tmp_path / "ws", corpus=str(bad), name="crm",
                                        operator="ann", base=base))


def test_other_model_name_refused(tmp_path, corpus, tiny_model_dir):
    ws = Workspace.open(tmp_path / "ws")
    with ws.sessions.begin() as session:
        session.add(Model(name="vision", kind="image"))
    ws.close()
    with pytest.raises(RefusedError, match="was not fine-tuned on a people corpus"):
        run_job(jobs.finetune_model_job(tmp_path / "ws", corpus=corpus, name="vision",
                                        operator="ann", base=str(tiny_model_dir), **FAST))
