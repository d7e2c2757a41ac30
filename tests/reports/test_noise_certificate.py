"""The certificate's verdicts against noise, and certificates of audits stored before the
statistics existed (docs/design.md section 15)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reports.certify_service import certify, verify_file
from reports.noise_facts import noise_facts, verdict_phrase
from storage.models import AuditRun
from storage.workspace import Workspace
from tests.reports.chain import PASS
from tests.reports.pdftext import pdf_text

NEW_KEYS = ("rmia", "statistics", "floor")


def test_the_certificate_states_verdicts_per_figure_and_class(certified: dict) -> None:
    manifest = json.loads(Path(certified["result"]["json"]).read_text())
    noise = manifest["audit"]["noise"]
    assert noise["resamples"] == 200 and noise["verdict"] in ("pass", "fail", "inconclusive")
    assert len(noise["classes"]) == 10 and all(c["samples"] > 0 for c in noise["classes"])
    figures = {f["figure"]: f for f in noise["figures"]}
    assert figures["scorecard.test_accuracy"]["verdict"] in ("pass", "fail", "inconclusive")
    assert "1000 non-members" in figures["rmia.tpr_at_0_1pct_fpr"]["reason"]
    assert "tpr_at_0_1pct_fpr" not in manifest["audit"]["figures"]["rmia"]
    text = pdf_text(certified["pdf"])
    assert "Verdicts against noise" in text and "RMIA AUC" in text and "Per class" in text
    assert "two retrainings" in text and "not judged: a TPR at 0.1% FPR needs" in text


def test_verdict_phrases() -> None:
    assert verdict_phrase({"verdict": "pass"}) == "within the spread of two retrainings"
    failed = {"verdict": "fail", "beyond": 0.081, "beyond_ci": [0.05, 0.11]}
    assert verdict_phrase(failed) == "beyond it, by 8.1 pp (95% CI 5.0 pp to 11.0 pp)"
    unsure = {"verdict": "inconclusive", "gap_ci": [-0.02, 0.07], "floor": 0.03}
    assert "straddles the spread of two retrainings (3.0 pp)" in verdict_phrase(unsure)
    assert verdict_phrase({"verdict": None, "reason": "too few"}) == "not judged: too few"
    assert noise_facts({"scorecard": {}}) is None


def test_an_audit_stored_before_the_statistics_certifies_and_verifies(
        executed_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(executed_root, root)
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:  # what the code before section 15 stored
        for run in session.query(AuditRun).filter_by(kind="image"):
            old = {k: v for k, v in run.metrics.items() if k not in NEW_KEYS}
            old["reference"] = {k: v for k, v in old["reference"].items() if k not in NEW_KEYS}
            run.metrics = old
            run.curves = {k: v for k, v in run.curves.items() if k != "rmia"}
    out = tmp_path / "old.pdf"  # in-process: the CLI's own service, without two subprocesses
    try:
        result = certify(ws, 1, out, operator="alice",
                         passphrase=PASS["UNPROMPT_KEY_PASSPHRASE"].encode())
        verified = verify_file(ws, out)
    finally:
        ws.close()
    manifest = json.loads(Path(result["json"]).read_text())
    assert manifest["audit"]["noise"] is None and "rmia" not in manifest["audit"]["figures"]
    assert "recorded before confidence intervals were measured" in pdf_text(out)
    assert verified["valid"] and verified["reasons"] == []
