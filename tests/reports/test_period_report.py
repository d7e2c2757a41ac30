"""`report --from --to --out [--csv]` over a workspace with requests in several states.

Built on the session's certified workspace (tests/reports/chain.py): request 1 certified,
request 2 received. Added here through the storage API and the engine (never by writing
rows): request 3 received 12 days ago, approved and forgotten now; request 4 rejected with a
reason; request 5 received 40 days ago and still open (overdue); request 6 received 26 days
ago (due within 7 days).
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest

from engine.jobs import run_job
from storage.erasure_kinds import describe
from tests import approvals
from tests.cli.helpers import assert_clean_error
from tests.reports.chain import cli, cli_json
from tests.reports.pdftext import pdf_text

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def busy_root(certified: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.forget import forget_job
    from storage.models import utcnow
    from storage.workspace import Workspace

    root = tmp_path_factory.mktemp("report") / "ws"
    shutil.copytree(certified["root"], root)
    now = utcnow()
    ws = Workspace.open(root)
    with ws.sessions.begin() as s:
        def new(cls: str, days_ago: int) -> int:
            return approvals.create_request(s, model_name="demo", classes=[cls], subject=f"s{cls}",
                                       subject_key=approvals.key_of(ws),
                                       legal_basis="GDPR Art. 17(1)(a)", operator="alice",
                                       received_at=now - days_ago * DAY).id

        executed = new("7", 12)
        approvals.approve(s, executed, "bob")
        rejected = new("8", 3)
        approvals.reject(s, rejected, "bob", "identity of the data subject not verified")
        new("9", 40)
        new("0", 26)
    ws.close()
    run_job(forget_job(root, model_name="demo", classes=["7"], operator="alice",
                       request=executed))
    return root


def period(days_back: int = 60) -> tuple[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return (today - days_back * DAY).isoformat(), today.isoformat()


def test_report_pdf_and_csv(busy_root: Path, tmp_path: Path) -> None:
    start, end = period()
    out, table = tmp_path / "report.pdf", tmp_path / "report.csv"
    r = cli_json(busy_root, "report", "--from", start, "--to", end, "--out", str(out),
                 "--csv", str(table), "--operator", "dpo")
    assert r["counts"] == {"received": 6, "approved": 2, "rejected": 1, "executed": 2,
                           "exact": 0, "certified": 1}
    assert r["waiting_for_exact"] == [1, 3]  # `full` mode: suppressed, a retrain to come
    assert r["overdue"] == [5] and r["at_risk"] == [6]
    t = r["time_to_erasure"]
    assert t["count"] == 2 and 11.9 < t["worst"] < 12.1 and t["median"] < t["worst"]
    assert r["log_valid"] and len(r["log_head"]) == 64
    assert r["certificates"] == [cli_json(busy_root, "certificates")["certificates"][0]
                                 ["certificate_id"]]
    rows = list(csv.DictReader(table.open()))
    assert [int(row["id"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[4]["rejected_reason"] == "identity of the data subject not verified"
    assert by_id[1]["audit_passed"] in ("pass", "fail") and by_id[1]["manifest_sha256"]
    assert by_id[5]["overdue"] == "True" and by_id[6]["at_risk"] == "True"
    assert out.read_bytes().startswith(b"%PDF") and b"/ByteRange" in out.read_bytes()


def test_report_text(busy_root: Path, tmp_path: Path) -> None:
    start, end = period()
    out = tmp_path / "r.pdf"
    cli_json(busy_root, "report", "--from", start, "--to", end, "--out", str(out))
    text = pdf_text(out)
    for fragment in ("Requests and deadlines", "OVERDUE", "due within 7 days",
                     "identity of the data subject not verified", "90th percentile",
                     "What was forgotten", "against the thresholds", "Certificates issued",
                     "Audit log", "intact"):
        assert fragment in text, fragment
    assert f"approximate: {describe('approximate')}" in text  # docs/design.md section 4.3


def test_signed_with_the_workspace_key(busy_root: Path, tmp_path: Path) -> None:
    from asn1crypto import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from reports.keys import certificate_fingerprint, signing_certificate

    start, end = period()
    out = tmp_path / "r.pdf"
    cli_json(busy_root, "report", "--from", start, "--to", end, "--out", str(out))
    cert = signing_certificate(busy_root / "keys")
    trust = ValidationContext(trust_roots=[x509.Certificate.load(cert.public_bytes(
        Encoding.DER))])
    with out.open("rb") as handle:
        status = validate_pdf_signature(PdfFileReader(handle).embedded_signatures[0], trust)
    assert status.intact and status.bottom_line
    assert status.signing_cert.sha256.hex() == certificate_fingerprint(cert)


@pytest.mark.parametrize(("start", "end", "fragment"), [
    ("2000-01-01", "2000-01-31", "no erasure request"),
    ("2999-01-01", "2999-01-31", "in the future"),
    ("2026-11-20", "2026-11-01", "before it starts"),
    ("yesterday", "2026-11-01", "not a date"),
])
def test_bad_periods_write_nothing(busy_root: Path, tmp_path: Path, start: str, end: str,
                                   fragment: str) -> None:
    out, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    result = cli(busy_root, "report", "--from", start, "--to", end, "--out", str(out),
                 "--csv", str(table))
    assert result.returncode == 1
    assert_clean_error(result, fragment)
    assert not out.exists() and not table.exists()


@pytest.fixture()
def busy_copy(busy_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(busy_root, root)
    return root


def test_csv_cells_that_start_a_formula_are_text(busy_copy: Path, tmp_path: Path) -> None:
    """A legal basis of ``=1+1`` reaches the CSV as text, not as a formula (OWASP)."""
    from storage.workspace import Workspace

    ws = Workspace.open(busy_copy)
    with ws.sessions.begin() as s:
        new = approvals.create_request(s, model_name="demo", classes=["4"], subject="@SUM(A1)",
                                       legal_basis="=1+1", operator="+alice",
                                       subject_key=approvals.key_of(ws))
    ws.close()
    start, end = period()
    table = tmp_path / "r.csv"
    cli_json(busy_copy, "report", "--from", start, "--to", end, "--out",
             str(tmp_path / "r.pdf"), "--csv", str(table))
    row = {int(r["id"]): r for r in csv.DictReader(table.open())}[new.id]
    assert row["legal_basis"] == "'=1+1"
    assert row["requested_by"] == "'+alice"


def test_csv_in_a_new_folder_is_written(busy_root: Path, tmp_path: Path) -> None:
    start, end = period()
    table = tmp_path / "new" / "folder" / "r.csv"
    cli_json(busy_root, "report", "--from", start, "--to", end, "--out",
             str(tmp_path / "r.pdf"), "--csv", str(table))
    assert table.is_file() and (tmp_path / "r.pdf").is_file()


def test_failed_report_leaves_no_pdf_and_no_new_key(busy_copy: Path, tmp_path: Path) -> None:
    """The CSV cannot be written (its folder is a file): no PDF, no folder and no signing key
    generated for this report are left behind."""
    for name in ("signing.p12", "signing.crt"):
        (busy_copy / "keys" / name).unlink()
    pins = sorted((busy_copy / "keys" / "trusted").iterdir())
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = tmp_path / "sub" / "r.pdf"
    start, end = period()
    result = cli(busy_copy, "report", "--from", start, "--to", end, "--out", str(out),
                 "--csv", str(blocker / "r.csv"))
    assert_clean_error(result, "blocker")
    assert result.returncode == 1
    assert not out.exists() and not out.parent.exists()
    assert not (busy_copy / "keys" / "signing.p12").exists()
    assert not (busy_copy / "keys" / "signing.crt").exists()
    assert sorted((busy_copy / "keys" / "trusted").iterdir()) == pins
    log = cli_json(busy_copy, "log", "verify")
    assert log["valid"]
