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
from storage.errors import RefusedError
from storage.models import ForgetRule
from storage.workspace import Workspace
from tests import approvals
from tests.cli.helpers import assert_clean_error
from tests.guard.conftest import (  # noqa: F401 - fixtures used by name
    _one_torch_thread,
    tiny_encoder_dir,
    tiny_model_dir,
)
from tests.guard.test_registry import FAST, write_rule_files
from tests.reports.chain import PASS, cli
from tests.reports.pdftext import pdf_text


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
    forget, retain = write_rule_files(folder)
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
    assert r["status"] == "certified" and r["erasure_kind"] == "approximate"
    out = cli_json(certified["root"], "verify", str(certified["pdf"]))
    assert out["valid"] and out["reasons"] == []
    assert out["summary"]["erased"] == "rule hogwarts"
    assert "suppressed at inference in tiny" in out["summary"]["claim"]
    listed = cli_json(certified["root"], "request", "list")["requests"]
    assert {q["id"]: q["status"] for q in listed}[1] == "certified"
    assert cli_json(certified["root"], "log", "verify")["valid"]


def test_manifest_describes_the_rule_and_its_audit(certified: dict) -> None:
    m = json.loads(Path(certified["result"]["json"]).read_text())
    assert m["schema"] == "unprompt.cert/2" and m["scope"]["kind"] == "rule"
    assert m["erasure"] == {**m["erasure"], "kind": "approximate",
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
    names = {c["name"] for c in audit["checks"]}
    assert {"knowledge_gap_max", "identical_unflagged_min", "tpr_forget_min"} <= names
    assert (m["operator"], m["approver"]) == ("dave", "carol")


def test_pdf_says_the_weights_are_unchanged(certified: dict) -> None:
    flat = pdf_text(certified["pdf"])
    assert "Erasure kind: approximate, suppression at inference" in flat
    assert "The language model's weights are unchanged" in flat
    assert "a prompt the classifier misses is answered as before" in flat
    assert "the guard must stay enabled" in flat
    assert "was erased" not in flat and "suppressed" in flat


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
