"""`lm finetune` against a workspace with the tiny model: versions, records by subject,
cancel, bad input (docs/design.md section 14)."""

from __future__ import annotations

import json

import pytest
import torch
from sqlalchemy import select

from engine.guard import subject_jobs as jobs
from engine.guard.people import generate, people, write_corpus
from engine.guard.recall import TERMS_ARTIFACT
from engine.guard.rule_rows import guard_rules, rule_fields
from engine.jobs import Cancelled, CancelToken, run_job
from storage import finetunes
from storage import rules as store
from storage.errors import RefusedError, UnpromptError
from storage.models import Artifact, AuditLogEntry, Model
from storage.rules import PSEUDONYM_FAMILY
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


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_model_dir) -> str:
    """A workspace with 'crm' fine-tuned on 6 people x 2 facts (tiny model)."""
    folder = tmp_path_factory.mktemp("tuned")
    corpus = write_corpus(generate(6, 2), folder / "people.jsonl")
    run_job(jobs.finetune_model_job(folder / "ws", corpus=str(corpus), name="crm",
                                    operator="ann", base=str(tiny_model_dir), **FAST))
    return str(folder / "ws")


def _request(ws_dir: str, subject: str) -> int:
    from tests import approvals

    ws = Workspace.open(ws_dir)
    try:
        with ws.sessions.begin() as session:
            return approvals.create_request(session, operator="ann", model_name="crm",
                                            subject=subject, legal_basis="GDPR Art. 17",
                                            subject_key=approvals.key_of(ws)).id
    finally:
        ws.close()


def test_subject_request_builds_enables_and_executes_the_rule(tuned, tiny_encoder_dir):
    from storage import requests as reqs
    from storage.finetunes import subject_rule_name
    from tests import approvals

    person = people(generate(6, 2))[1]
    request_id = _request(tuned, f"  {person.upper()} ")  # case and spacing aside
    ws = Workspace.open(tuned)
    try:
        with ws.sessions.begin() as session:
            scope = reqs.get_request(session, request_id).scope
            assert scope["rule"] == subject_rule_name(person) and person not in str(scope)
            approvals.approve(session, request_id, "bob")
    finally:
        ws.close()
    result = run_job(jobs.forget_subject_job(tuned, request=request_id, operator="bob",
                                             encoder=str(tiny_encoder_dir)))
    assert result["status"] == "active" and result["request"] == request_id
    cal = result["calibration"]
    assert {"tpr_held_out_phrasings", "fpr_test_people", "threshold"} <= set(cal)
    assert result["corruption"] == PSEUDONYM_FAMILY and cal["layers"] == [1, 2]  # tiny 2 layers
    params = result["corruption_params"]  # the person's name is in an artifact, not the row
    assert set(params) == {"first", "last", "value_bias", TERMS_ARTIFACT}
    assert cal["pseudonym"]["candidates_tried"] >= 1 and "delta" in cal["value_bias"]
    ws = Workspace.open(tuned)
    try:
        with ws.sessions() as session:
            rule = store.get_rule(session, store.language_model(session, result["model"]),
                                  result["name"])
            fields = rule_fields(rule)
        corruption = guard_rules(ws, [fields], None)[0].corruption_fn()
        assert person in corruption.terms
        assert [old for old, _ in corruption.pseudonyms] == person.split()
        assert corruption.value_bias == params["value_bias"]
    finally:
        ws.close()
    assert person not in json.dumps(result)
    assert result["examples"]["forget"] > 0 and result["examples"]["retain"] > 0
    ws = Workspace.open(tuned)
    try:
        with ws.sessions() as session:
            assert reqs.get_request(session, request_id).status == "executed"
    finally:
        ws.close()
    with pytest.raises(RefusedError, match=f"request {request_id} .* duplicate"):
        _request(tuned, person)
    from engine.guard.registry_jobs import retrain_rule_job

    with pytest.raises(UnpromptError, match="data subject's erasure request .* `retrain crm`"):
        run_job(retrain_rule_job(tuned, rule=result["name"], operator="bob",
                                 model=result["model"]))


def test_unknown_subject_is_refused_with_near_matches(tuned):
    person = people(generate(6, 2))[2]
    with pytest.raises(Exception, match=f"no records of .* did you mean '{person}'"):
        _request(tuned, person[:-2] + "xx")
    with pytest.raises(Exception, match="no records of 'Zzyzx Qwerty'.*check the spelling"):
        _request(tuned, "Zzyzx Qwerty")


def test_cli_people_check_finetune_and_subject_request(tmp_path, capsys, tiny_model_dir):
    from cli.app import main

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["--workspace", str(tmp_path / "ws"), "--operator", "ann", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    corpus = str(tmp_path / "p.jsonl")
    assert cli("lm", "people", corpus, "--people", "3", "--facts", "2")[0] == 0
    code, out, _ = cli("lm", "check", corpus)
    assert code == 0 and "3 people, 6 records" in out
    (tmp_path / "bad.jsonl").write_text('{"person": "A"}\n', encoding="utf-8")
    code, _, err = cli("lm", "check", str(tmp_path / "bad.jsonl"))
    assert code == 1 and err.strip().splitlines() == [
        "error: bad.jsonl line 1: missing 'fact'."]
    code, out, err = cli("lm", "finetune", "--corpus", corpus, "--name", "crm", "--base",
                         str(tiny_model_dir), "--epochs", "1", "--batch-size", "6",
                         "--device", "cpu")
    assert code == 0 and "crm v1: fine-tuned (full) on 6 records of 3 people" in out, err
    assert cli("settings", "--four-eyes", "off")[0] == 0
    code, _, err = cli("request", "new", "--model", "crm", "--subject", "Nobody Atall",
                       "--legal-basis", "GDPR Art. 17")
    assert code == 1 and "no records of 'Nobody Atall' went into 'crm'" in err
    assert len(err.strip().splitlines()) == 1


def test_lora_fine_tune_merges_into_a_plain_model():
    from engine.guard.finetune import FinetuneSettings, finetune_job
    from tests.guard.conftest import tiny_lm

    model = tiny_lm()
    before = model.model.model.layers[0].mlp.up_proj.weight.detach().clone()
    stats = run_job(finetune_job(model, generate(2, 2), FinetuneSettings(
        epochs=1, batch_size=4, mode="lora", lora_rank=2, lr=0.05)))
    assert stats["mode"] == "lora" and stats["steps"] == 1
    assert not hasattr(model.model, "peft_config")  # merged back: a plain model again
    assert not torch.equal(before, model.model.model.layers[0].mlp.up_proj.weight)
    assert stats["trainable_parameters"] < sum(p.numel() for p in model.model.parameters())


def test_full_fine_tune_trains_only_the_top_blocks():
    from engine.guard.finetune import FinetuneSettings, finetune_job
    from tests.guard.conftest import tiny_lm

    model = tiny_lm()
    layers = model.model.model.layers
    low, top = (layers[i].mlp.up_proj.weight.detach().clone() for i in (0, 1))
    embed = model.model.get_input_embeddings().weight.detach().clone()
    run_job(finetune_job(model, generate(2, 2), FinetuneSettings(
        epochs=1, batch_size=4, top_layers=1, lr=0.05)))
    assert torch.equal(low, layers[0].mlp.up_proj.weight)
    assert torch.equal(embed, model.model.get_input_embeddings().weight)
    assert not torch.equal(top, layers[1].mlp.up_proj.weight)


def test_a_gguf_base_unpacked_to_float_weights_is_saved(tmp_path) -> None:
    """The offline default is a GGUF file: transformers unpacks its weights to float tensors
    but keeps the quantizer's mark, and refuses to save such a model (found on SmolLM2)."""
    from engine.guard.lm import load_language_model
    from tests.guard.conftest import tiny_lm

    model = tiny_lm()
    model.model.hf_quantizer = "gguf (unpacked)"
    model.model.config.quantization_config = {"quant_method": "gguf"}
    jobs.write_weights(model, tmp_path / "w")
    assert model.model.hf_quantizer is None
    assert load_language_model(str(tmp_path / "w"), "cpu").source == "folder"
