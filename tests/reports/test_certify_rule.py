"""Certificates for forget-rule requests of a guarded language model, from the CLI.

A tiny random Llama and a tiny BERT encoder (tests/guard/conftest.py) carry one trained
rule, once per module; request new -> approve -> `guard rule enable --request` -> `guard
eval --request` -> `certify` -> `verify` then runs through the CLI's ``main`` in-process
(training and evaluation as jobs with small settings; tests/guard/test_cli.py covers those
commands). The certificate must say that the language model's weights are unchanged and
that the guard must stay enabled; verify must fail, with a named reason, once the rule is
retrained or disabled.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import select

from cli.app import main
from engine.guard import registry_jobs as jobs
from engine.jobs import run_job
from reports.certify_service import precheck, verify_file
from storage import rules as store
from storage.audit_checks import check_guard_audit
from storage.errors import RefusedError
from storage.models import AuditRun, ForgetRule
from storage.workspace import Workspace
from tests import approvals
from tests.cli.helpers import assert_clean_error
from tests.guard.conftest import (  # noqa: F401 - fixtures used by name
    _one_torch_thread,
    tiny_encoder_dir,
    tiny_model_dir,
)
from tests.guard.test_registry import FAST, FORGET, write_rule_files
from tests.reports.chain import PASS, cli
from tests.reports.pdftext import pdf_text

HELD_OUT = ["Which house did Harry join at Hogwarts?\tGryffindor",
            "Who is the Hogwarts headmaster?\tDumbledore"]


def write_split_rule(folder: Path) -> tuple[str, str]:
    """The test rule as JSON with two forget prompts marked held out (``split: test``)."""
    forget_txt, retain = write_rule_files(folder)
    items = [{"prompt": line.split("\t")[0], "keys": [line.split("\t")[1]],
              "split": "test" if line in HELD_OUT else "train"} for line in FORGET + HELD_OUT]
    forget = folder / "forget.json"
    forget.write_text(json.dumps({"forget": items}), encoding="utf-8")
    return str(forget), retain


def cli_json(root: Path, *args: str) -> dict:
    """One CLI command in-process (``main``), as ``--json``; the subprocess path is covered
    by tests/reports/test_certify_cli.py."""
    out = io.StringIO()
    with mock.patch.dict(os.environ, PASS), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["--workspace", str(root), *args, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def approved_root(tmp_path_factory, tiny_model_dir, tiny_encoder_dir) -> Path:  # noqa: F811
    """Model 'tiny' with rule 'hogwarts' (trained, active) and request 1 for it, approved
    by another operator than the one who recorded it."""
    folder = tmp_path_factory.mktemp("rule-cert")
    root = folder / "ws"
    forget, retain = write_split_rule(folder)
    run_job(jobs.load_model_job(root, operator="ann", model=str(tiny_model_dir),
                                encoder=str(tiny_encoder_dir), name="tiny"))
    run_job(jobs.add_rule_job(root, operator="ann", name="hogwarts", forget_file=forget,
                              retain_file=retain, **FAST))
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        request = approvals.create_request(session, model_name="tiny", rule="hogwarts",
                                      subject_key=approvals.key_of(ws),
                                      subject="subject-42", legal_basis="GDPR Art. 17(1)(a)",
                                      operator="bob")
        approvals.approve(session, request.id, "carol")
    ws.close()
    return root


@pytest.fixture(scope="module")
def certified(approved_root: Path, tmp_path_factory) -> dict:
    """A copy with request 1 executed by the rule, verified by its audit and certified."""
    root = tmp_path_factory.mktemp("rule-certified") / "ws"
    shutil.copytree(approved_root, root)
    enabled = cli_json(root, "guard", "rule", "enable", "hogwarts", "--request", "1",
                       "--operator", "dave")
    evaluated = run_job(jobs.evaluate_rule_job(root, rule="hogwarts", operator="eve",
                                               request=1, max_new_tokens=3, general_sample=2))
    pdf = root.parent / "out" / "rule-cert.pdf"
    result = cli_json(root, "certify", "--request", "1", "--out", str(pdf),
                      "--operator", "dave")
    return {"root": root, "pdf": pdf, "result": result, "enabled": enabled,
            "evaluated": evaluated}


@pytest.fixture()
def certified_copy(certified: dict, tmp_path: Path) -> dict:
    root = tmp_path / "ws"
    shutil.copytree(certified["root"], root)
    return {**certified, "root": root}


def test_certify_is_refused_before_execution_and_before_the_audit(approved_root: Path,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(approved_root, root)
    out = tmp_path / "c.pdf"
    assert_clean_error(cli(root, "certify", "--request", "1", "--out", str(out)),
                       "guard rule enable hogwarts --request 1")
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            store.set_status(session, "hogwarts", True, "dave", 1)
        with pytest.raises(RefusedError, match="guard eval hogwarts --request 1"):
            precheck(ws, 1)
    finally:
        ws.close()
    assert not out.exists()


def test_rule_request_is_certified_and_verifies(certified: dict) -> None:
    assert certified["enabled"]["status"] == "active"
    assert certified["evaluated"]["verified_requests"] == [1]
    r = certified["result"]
    assert r["status"] == "certified" and r["erasure_kind"] == "suppressed"
    out = cli_json(certified["root"], "verify", str(certified["pdf"]))
    assert out["valid"] and out["reasons"] == []
    assert out["summary"]["erased"] == "rule hogwarts"
    assert "suppressed at inference in tiny" in out["summary"]["claim"]
    listed = cli_json(certified["root"], "request", "list")["requests"]
    assert {q["id"]: q["status"] for q in listed}[1] == "certified"
    assert cli_json(certified["root"], "log", "verify")["valid"]


def test_manifest_describes_the_rule_and_its_audit(certified: dict) -> None:
    m = json.loads(Path(certified["result"]["json"]).read_text())
    assert m["schema"] == "unprompt.cert/3" and m["scope"]["kind"] == "rule"
    assert m["erasure"] == {**m["erasure"], "kind": "suppressed",
                            "mechanism": "inference-guard", "weights_changed": False}
    assert "unchanged" in m["erasure"]["note"] and "purge" not in m
    guard = m["guard"]
    assert guard["must_stay_enabled"] and not guard["language_model"]["weights_changed"]
    rule = guard["rule"]
    assert (rule["name"], rule["version"], rule["status"]) == ("hogwarts", 1, "active")
    assert rule["classifier_artifact"] == certified["enabled"]["classifier_artifact"]
    assert {"target_fpr", "tpr", "fpr"} <= set(rule["calibration"])
    assert guard["strength_search"]["evaluations"] == len(guard["strength_search"]["trace"])
    audit = m["audit"]
    assert audit["kind"] == "guard" and audit["run_id"] == certified["evaluated"]["audit_run"]
    assert {"knowledge", "side_effects", "classifier"} <= set(audit["figures"])
    assert audit["figures"]["erasure"] == "suppressed"
    names = {c["name"] for c in audit["checks"]}
    assert {"knowledge_gap_max", "identical_unflagged_min", "tpr_forget_min"} <= names
    assert (m["operator"], m["approver"]) == ("dave", "carol")


def test_pdf_says_the_weights_are_unchanged(certified: dict) -> None:
    flat = pdf_text(certified["pdf"])
    assert "Erasure kind: suppressed. The model's weights are unchanged; the knowledge is " \
        "blocked at inference" in flat
    assert "The language model's weights are unchanged" in flat
    assert "a prompt the classifier misses is answered as before" in flat
    assert "the guard must stay enabled" in flat
    assert "was erased" not in flat and "suppressed" in flat


def test_manifest_quotes_held_out_figures_with_their_prompt_counts(certified: dict) -> None:
    """The audit figures rest on the two held-out forget prompts, not on the six the
    classifier trained on, and the certificate says how many prompts each figure rests on."""
    m = json.loads(Path(certified["result"]["json"]).read_text())
    figures = m["audit"]["figures"]
    assert figures["basis"] == "held-out"
    assert figures["knowledge"]["evaluated"] == len(HELD_OUT)
    assert figures["classifier"]["counts"]["forget"] == len(HELD_OUT)
    assert figures["knowledge"]["ignorant_prompts"] > 0
    side = figures["side_effects"]
    assert side["evaluated"] == side["unflagged"] + side["flagged"]
    residual = m["erasure"]["residual"]
    assert residual["basis"] == "held-out"
    assert residual["evaluated_prompts"] == residual["classifier_prompts"] == len(HELD_OUT)
    calibration = m["guard"]["rule"]["calibration"]
    assert calibration["method"] == "held-out calibration split"
    # The classifier fits and calibrates on the train split plus its augmentation (aliases,
    # term questions: engine/guard/augment.py), never on the held-out prompts above.
    assert calibration["n_positive"] + calibration["n_fit_positive"] >= len(FORGET)
    assert m["guard"]["rule"]["examples"]["forget_held_out"] == len(HELD_OUT)
    flat = pdf_text(certified["pdf"])
    assert "Every figure rests on held-out prompts only" in flat
    assert "calibration split the deployed classifier never trained on" in flat
    assert f"{len(FORGET) + len(HELD_OUT)} forget (2 held out)" in flat
    assert f"held-out TPR {100 * figures['classifier']['tpr_forget']:.1f}% on 2 prompts" in flat


def test_certificate_says_strictly_above_as_the_guard_flags(certified: dict) -> None:
    """The guard flags a score strictly above the threshold; the certificate says so."""
    from reports.pdf_guard import HOW

    m = json.loads(Path(certified["result"]["json"]).read_text())
    for text in (m["method"]["description"], HOW, pdf_text(certified["pdf"])):
        assert "strictly above" in " ".join(text.split()) and "at or above" not in text


def _make_old_style(root: Path) -> int:
    """Strip ``basis`` from the stored audit: an evaluation made before held-out scoring."""
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            run = session.scalars(select(AuditRun).where(AuditRun.kind == "guard")).one()
            run.metrics = {k: v for k, v in run.metrics.items() if k != "basis"}
            return run.id
    finally:
        ws.close()


def test_an_evaluation_made_before_held_out_scoring_is_not_quoted(approved_root: Path,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(approved_root, root)
    cli_json(root, "guard", "rule", "enable", "hogwarts", "--request", "1", "--operator", "dave")
    run_job(jobs.evaluate_rule_job(root, rule="hogwarts", operator="eve", request=1,
                                   max_new_tokens=3, general_sample=2))
    run_id = _make_old_style(root)
    ws = Workspace.open(root)
    try:
        with pytest.raises(RefusedError, match=f"audit run {run_id} .* predates held-out"):
            precheck(ws, 1)
        with ws.sessions() as session:
            metrics = session.get(AuditRun, run_id).metrics
    finally:
        ws.close()
    checks = {c["name"]: c for c in check_guard_audit(metrics, {"knowledge_gap_max": 1.0,
                                                                "tpr_forget_min": 0.0})["checks"]}
    assert checks["knowledge_gap_max"]["passed"] is None
    assert "predates held-out scoring" in checks["knowledge_gap_max"]["note"]
    assert checks["tpr_forget_min"]["passed"] is True  # the classifier figures were held out


def test_a_certificate_from_an_older_evaluation_still_verifies(certified_copy: dict) -> None:
    _make_old_style(certified_copy["root"])
    out = _verify(certified_copy["root"], certified_copy["pdf"])
    assert out["valid"] and out["reasons"] == []



def _verify(root: Path, pdf: Path) -> dict:
    ws = Workspace.open(root)
    try:
        return verify_file(ws, pdf)
    finally:
        ws.close()


def test_verify_fails_once_the_rule_is_retrained(certified_copy: dict) -> None:
    ws = Workspace.open(certified_copy["root"])
    try:
        with ws.sessions.begin() as session:
            row = session.scalars(select(ForgetRule)).one()
            fields = {k: getattr(row, k) for k in store.RULE_FIELDS}
            store.update_rule(session, row, {**fields, "sigma": row.sigma * 2}, "ann")
    finally:
        ws.close()
    out = _verify(certified_copy["root"], certified_copy["pdf"])
    assert not out["valid"] and out["reasons"] == ["rule-retrained"]
    assert "certified: version 1; now: version 2" in out["explanations"][0]


@pytest.mark.parametrize("edit, reason", [("disable", "rule-disabled"),
                                          ("delete", "rule-missing")])
def test_verify_fails_when_the_rule_no_longer_applies(certified_copy: dict, edit: str,
                                                      reason: str) -> None:
    ws = Workspace.open(certified_copy["root"])
    try:
        with ws.sessions.begin() as session:  # `rule disable` refuses; only a direct edit can
            row = session.scalars(select(ForgetRule)).one()
            if edit == "disable":
                row.status = "disabled"
            else:
                session.delete(row)
    finally:
        ws.close()
    out = _verify(certified_copy["root"], certified_copy["pdf"])
    assert not out["valid"] and out["reasons"] == [reason]


def test_period_report_checks_the_guard_audit(certified: dict) -> None:
    import datetime as dt

    from reports.period_facts import gather

    now = dt.datetime.now(dt.UTC)
    ws = Workspace.open(certified["root"])
    try:
        with ws.sessions() as session:
            facts = gather(session, now - dt.timedelta(days=1), now + dt.timedelta(days=1), now)
    finally:
        ws.close()
    audit = next(r for r in facts["requests"] if r["id"] == 1)["audit"]
    assert audit["kind"] == "guard" and audit["run_id"] == certified["evaluated"]["audit_run"]
    assert {c["name"] for c in audit["checks"]} >= {"knowledge_gap_max", "tpr_forget_min"}


def test_an_older_out_of_fold_calibration_is_labelled_as_such() -> None:
    """A rule trained before held-out calibration keeps its stored rates, but the
    certificate says they are other heads' out-of-fold scores, not the deployed head's."""
    from reports.guard_text import calibration_sentence

    old = {"threshold": 0.77, "target_fpr": 0.01, "tpr": 0.83, "fpr": 0.0099,
           "n_positive": 107, "n_negative": 402, "folds": 5,
           "method": "k-fold out-of-fold scores"}
    text = calibration_sentence(old)
    assert "out-of-fold scores of other heads" in text and "never trained on" not in text
    assert ("TPR 83.0% on 107 forget prompts (written and augmented, not told apart) and FPR "
            "1.0% on 402 other prompts (written and augmented, not told apart)") in text


def test_the_certificate_tells_written_examples_from_augmented_variants(certified: dict
                                                                       ) -> None:
    """The rule has no calibration prompts written apart: its 25% calibration split is drawn
    from the train examples and their augmented variants, and the certificate says so."""
    m = json.loads(Path(certified["result"]["json"]).read_text())
    cal = m["guard"]["rule"]["calibration"]
    split = cal["sources"]
    assert split["calibration"] == "drawn from the examples and their augmented variants"
    assert split["fit_positive"]["written"] + split["positive"]["written"] == len(FORGET)
    assert split["fit_positive"]["augmented"] + split["fit_positive"]["written"] == \
        cal["n_fit_positive"]
    assert split["positive"]["augmented"] + split["positive"]["written"] == cal["n_positive"]
    flat = pdf_text(certified["pdf"])
    fit = split["fit_positive"]
    assert (f"{cal['n_fit_positive']} forget prompts ({fit['written']} written, "
            f"{fit['augmented']} augmented variants)") in flat
    assert "drawn from the same written examples and their augmented variants" in flat
    assert "a weaker calibration than one on prompts written apart" in flat
