"""`guard eval` of a person's forget rule: the TOFU / MUSE figures against the registry's
retain model, or the reason there is none (docs/design.md section 14). Tiny model."""

from __future__ import annotations

import pytest

from engine.guard import subject_jobs as jobs
from engine.guard.people import generate, people, write_corpus
from engine.guard.registry_jobs import evaluate_rule_job
from engine.jobs import run_job
from storage import finetunes
from storage.workspace import Workspace

FAST = {"epochs": 1, "batch_size": 6, "device": "cpu"}
PEOPLE = people(generate(6, 2))
EVAL = {"max_new_tokens": 3, "general_sample": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, tiny_model_dir, tiny_encoder_dir) -> tuple[str, str, str]:
    """'crm' fine-tuned on 6 people x 2 facts, the first person's request executed:
    (workspace, corpus, rule name)."""
    from tests import approvals

    folder = tmp_path_factory.mktemp("subject-audit")
    corpus = str(write_corpus(generate(6, 2), folder / "people.jsonl"))
    ws_dir = str(folder / "ws")
    run_job(jobs.finetune_model_job(ws_dir, corpus=corpus, name="crm", operator="ann",
                                    base=str(tiny_model_dir), **FAST))
    ws = Workspace.open(ws_dir)
    try:
        with ws.sessions.begin() as session:
            model = finetunes.finetuned_model(session, "crm")
            model.config = {**model.config, "encoder": str(tiny_encoder_dir)}
            request = approvals.create_request(session, operator="ann", model_name="crm",
                                               subject=PEOPLE[0], legal_basis="GDPR Art. 17",
                                               subject_key=approvals.key_of(ws))
            approvals.approve(session, request.id, "bob")
            request_id = request.id
    finally:
        ws.close()
    rule = run_job(jobs.forget_subject_job(ws_dir, request=request_id, operator="bob",
                                           encoder=str(tiny_encoder_dir)))
    return ws_dir, corpus, rule["name"]


def test_without_a_retain_model_the_reference_is_missing(guarded):
    ws_dir, _, rule = guarded
    result = run_job(evaluate_rule_job(ws_dir, rule=rule, operator="bob", **EVAL))
    subject = result["subject"]
    assert "no fine-tune of this corpus" in subject["reference"]["missing"]
    assert set(subject["models"]) == {"fine-tuned", "guarded"}
    guarded_model = subject["models"]["guarded"]
    assert guarded_model["forget_quality"] is None and guarded_model["privleak"] is None
    assert guarded_model["privleak_verbatim"] is None  # no retain model: never estimated
    assert 0 <= guarded_model["mia_auc"]["min_k_pp"] <= 1
    assert subject["counts"]["forget"] == 2 and subject["counts"]["never_trained"] == 4


def test_with_a_retain_model_every_figure_is_measured_and_stored(guarded, tiny_model_dir):
    from storage.audits import get_people_audit

    ws_dir, corpus, rule = guarded
    run_job(jobs.finetune_model_job(ws_dir, corpus=corpus, name="crm-retain", operator="ann",
                                    base=str(tiny_model_dir), exclude=[PEOPLE[0]], **FAST))
    result = run_job(evaluate_rule_job(ws_dir, rule=rule, operator="bob", model="crm",
                                       request=1, **EVAL))
    assert result["verified_requests"] == [1]
    subject = result["subject"]
    assert subject["reference"] == {"model": "crm-retain", "version": 1, "people": 5,
                                    "left_out": 1}
    models = subject["models"]
    assert set(models) == {"fine-tuned", "guarded", "retain"}
    assert models["retain"]["forget_quality"] == 1.0  # the reference against itself
    assert all(0 <= m["forget_quality"] <= 1 for m in models.values())
    assert models["retain"]["privleak"]["loss"] == 0.0
    # the attacks again on the very questions the model was trained on (MUSE's attacker)
    assert models["retain"]["privleak_verbatim"]["min_k_pp"] == 0.0
    assert set(models["guarded"]["mia_auc_verbatim"]) == {"loss", "zlib", "min_k", "min_k_pp"}
    assert subject["counts"]["verbatim"] == subject["counts"]["forget"]
    assert "utility_vs_finetuned" in models["guarded"]  # None: a random model has none
    ws = Workspace.open(ws_dir)
    try:
        with ws.sessions() as session:
            stored = get_people_audit(session, result["audit_run"])
    finally:
        ws.close()
    assert stored["metrics"]["subject"]["models"]["guarded"]["mia_auc"] == \
        models["guarded"]["mia_auc"]
    curves = stored["curves"]["subject"]
    assert sum(curves["truth_ratio_histograms"]["retain"]["counts"]) == 2
    assert curves["mia_roc"]["guarded"]["fpr"][-1] == 1.0


def test_the_certificate_quotes_the_people_figures(guarded, tmp_path):
    """After the audit with the retain model (the test above), the certificate of the
    request carries the figures in its manifest and prints them with both charts."""
    import json
    from pathlib import Path

    from tests.reports.pdftext import pdf_text
    from tests.reports.test_certify_rule import cli_json

    ws_dir = guarded[0]
    pdf = tmp_path / "person.pdf"
    result = cli_json(Path(ws_dir), "certify", "--request", "1", "--out", str(pdf),
                      "--operator", "dave")
    assert result["erasure_kind"] == "suppressed"
    manifest = json.loads(Path(result["json"]).read_text())
    subject = manifest["audit"]["figures"]["subject"]
    assert subject["reference"]["model"] == "crm-retain"
    assert set(subject["charts"]["truth_ratio_histograms"]) == {"fine-tuned", "guarded",
                                                                "retain"}
    assert PEOPLE[0] not in json.dumps(manifest)  # figures only, never the person's records
    text = pdf_text(pdf.read_bytes())
    assert "The person, against a model that never met them" in text
    assert "Retain reference: crm-retain v1" in text and "Min-K%++ AUC" in text
    assert "Corruption: pseudonym: each part of the person's name is replaced" in text
    assert "recall ablation: the outputs of the MLP blocks of layers 1 to 1 are zeroed" in text
    assert "never trained on" in text
    assert subject["corruption"]["layers"] == [1, 2]
    assert manifest["erasure"]["weights_changed"] is False


def test_a_live_version_without_the_person_has_nothing_to_measure(guarded, tiny_model_dir):
    """(Last: it supersedes 'crm'.) Once 'crm' is fine-tuned again without the person, the
    audit says there is nothing left to measure instead of scoring an empty set."""
    ws_dir, corpus, rule = guarded
    run_job(jobs.finetune_model_job(ws_dir, corpus=corpus, name="crm", operator="ann",
                                    base=str(tiny_model_dir), exclude=[PEOPLE[0]], **FAST))
    subject = run_job(evaluate_rule_job(ws_dir, rule=rule, operator="bob", **EVAL))["subject"]
    assert subject["models"] == {} and "no records of this person" in \
        subject["reference"]["missing"]
