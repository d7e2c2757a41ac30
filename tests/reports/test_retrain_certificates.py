"""After a retrain (docs/design.md section 18): the request is certified again as exact, the
earlier certificate keeps verifying and names the one that supersedes it, and the period
report shows both clocks (time to suppression, time to exact) against the due date."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from engine.jobs import run_job
from tests.reports.chain import cli, cli_json
from tests.reports.pdftext import pdf_text
from tests.reports.test_period_report import period


@pytest.fixture(scope="module")
def retrained(certified: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The certified workspace (request 1: class 3, approximate, certified), retrained and
    certified again."""
    import torch

    from engine.retrain import retrain_job

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("retrained") / "ws"
    shutil.copytree(certified["root"], root)
    old_pdf = root.parent / "cert-1.pdf"
    shutil.copy(certified["pdf"], old_pdf)
    out = run_job(retrain_job(root, model_name="demo", operator="carol"))
    new_pdf = root.parent / "cert-2.pdf"
    again = cli_json(root, "certify", "--request", "1", "--out", str(new_pdf),
                     "--operator", "alice")
    return {"root": root, "old": old_pdf, "new": new_pdf, "retrain": out, "again": again,
            "first": certified["result"]}


def test_the_request_is_certified_again_as_exact(retrained: dict) -> None:
    assert retrained["first"]["erasure_kind"] == "approximate"
    assert retrained["again"]["erasure_kind"] == "exact"
    manifest = cli_json(retrained["root"], "verify", str(retrained["new"]))
    assert manifest["valid"] and manifest["summary"]["erasure_kind"] == "exact"
    text = pdf_text(retrained["new"])
    assert "Erasure kind: exact. The model was retrained without the erased data" in text
    assert "Suppressed" in text and "retrain-equivalent" in text
    assert "It became exact 0 day(s) after receipt" in text


def test_the_earlier_certificate_stays_valid_and_says_it_is_superseded(retrained: dict
                                                                        ) -> None:
    result = cli_json(retrained["root"], "verify", str(retrained["old"]))
    assert result["valid"] and result["summary"]["erasure_kind"] == "approximate"
    new_id = retrained["again"]["certificate_id"]
    assert [c["certificate_id"] for c in result["superseded_by"]] == [new_id]
    assert any(f"Superseded by certificate {new_id} (exact erasure" in n
               for n in result["notes"])
    plain = cli(retrained["root"], "verify", str(retrained["old"]))
    assert plain.returncode == 0 and f"note: Superseded by certificate {new_id}" in plain.stdout


def test_a_third_certificate_is_refused(retrained: dict, tmp_path: Path) -> None:
    result = cli(retrained["root"], "certify", "--request", "1", "--out",
                 str(tmp_path / "c3.pdf"), "--operator", "alice")
    assert result.returncode == 1 and "already certified" in result.stderr


def test_the_period_report_shows_both_clocks(retrained: dict, tmp_path: Path) -> None:
    start, end = period()
    out, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    r = cli_json(retrained["root"], "report", "--from", start, "--to", end, "--out", str(out),
                 "--csv", str(table), "--operator", "dpo")
    assert r["counts"]["exact"] == 1 and r["waiting_for_exact"] == []
    assert r["time_to_exact"]["count"] == 1 and r["time_to_suppression"]["count"] == 1
    row = next(row for row in csv.DictReader(table.open()) if row["id"] == "1")
    assert row["suppressed_at"] and row["exact_at"] and row["exact_late"] == "False"
    text = pdf_text(out)
    for fragment in ("Time to suppression and to exact erasure", "Made exact",
                     "d before"):
        assert fragment in text, fragment
