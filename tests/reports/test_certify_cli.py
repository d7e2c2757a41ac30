"""request new -> approve -> forget --request -> audit -> certify -> verify, from the CLI.

One tiny digits model is trained, forgotten and audited once per session
(tests/reports/chain.py); the commands run through the CLI's ``main`` in-process, and
verify and a refused certify once more in a real ``main.py`` process, as a shell sees them.
Each test works on its own copy of the workspace.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.helpers import assert_clean_error
from tests.reports.chain import cli, cli_json
from tests.reports.pdftext import pdf_text
from tests.reports.test_sign_verify import _replace_manifest, _signed_offsets


@pytest.fixture()
def certified_copy(certified: dict, tmp_path: Path) -> dict:
    root = tmp_path / "ws"
    shutil.copytree(certified["root"], root)
    pdf = tmp_path / "cert.pdf"
    shutil.copyfile(certified["pdf"], pdf)
    return {**certified, "root": root, "pdf": pdf}


def verify(root: Path, pdf: Path, process: bool = False) -> dict:
    result = cli(root, "verify", str(pdf), "--json", process=process)
    assert "Traceback" not in result.stderr
    out = json.loads(result.stdout)
    assert (result.returncode == 0) == out["valid"]
    return out


def test_certify_then_verify_valid(certified: dict) -> None:
    r = certified["result"]
    assert r["status"] == "certified" and r["erasure_kind"] == "approximate"
    assert Path(r["pdf"]).is_file() and Path(r["json"]).is_file()
    assert Path(r["stored_copy"]).is_file()
    out = verify(certified["root"], certified["pdf"], process=True)
    assert out["valid"] and out["reasons"] == []
    assert out["certificate_id"] == r["certificate_id"]
    listed = cli_json(certified["root"], "request", "list")["requests"]
    assert {q["id"]: q["status"] for q in listed}[1] == "certified"
    log = cli_json(certified["root"], "log", "verify")
    assert log["valid"]


def test_manifest_states_the_measured_residual(certified: dict) -> None:
    manifest = json.loads(Path(certified["result"]["json"]).read_text())
    erasure = manifest["erasure"]
    assert erasure["kind"] == "approximate"
    assert "relearn_largest_gap" in erasure["residual"]
    assert "mia_efficacy" in erasure["residual"]
    assert "reference_mia_efficacy" in erasure["residual"]
    assert manifest["audit"]["reference"] is not None
    assert manifest["approver"] == "bob" and manifest["operator"] == "alice"
    assert manifest["request"]["subject_ref_scheme"] == "hmac-sha256"


def test_pdf_says_approximate_plainly(certified: dict, tmp_path: Path) -> None:
    flat = pdf_text(certified["pdf"])
    assert "Erasure kind: approximate" in flat
    assert "Measured residual: relearn accuracy up to" in flat
    assert "retrain reference" in flat


def test_flipped_byte_in_signed_range_fails(certified_copy: dict) -> None:
    pdf = certified_copy["pdf"]
    signed = pdf.read_bytes()
    for offset in _signed_offsets(signed, samples=4)[1:3]:  # inside each signed part
        tampered = bytearray(signed)
        tampered[offset] ^= 0x01
        pdf.write_bytes(bytes(tampered))
        out = verify(certified_copy["root"], pdf)
        assert not out["valid"] and out["reasons"], offset


def test_manifest_edited_after_signing_fails(certified_copy: dict) -> None:
    pdf = certified_copy["pdf"]
    manifest = json.loads(Path(certified_copy["result"]["json"]).read_text())
    forged = {**manifest, "approver": "mallory"}
    pdf.write_bytes(_replace_manifest(pdf.read_bytes(), forged, update_hash=True))
    out = verify(certified_copy["root"], pdf)
    assert not out["valid"] and "modified-after-signing" in out["reasons"]


def test_other_workspace_key_fails_until_trusted(certified_copy: dict, tmp_path: Path
                                                 ) -> None:
    """A workspace with the same registry but another signing key does not accept the
    certificate until `keys trust` pins the issuing certificate."""
    from reports.keys import CRT_NAME, ensure_signing_key

    root = certified_copy["root"]
    issuing_crt = tmp_path / "issuer.crt"
    shutil.copyfile(root / "keys" / CRT_NAME, issuing_crt)
    shutil.rmtree(root / "keys")
    ensure_signing_key(root / "keys", b"another passphrase")
    out = verify(root, certified_copy["pdf"])
    assert not out["valid"] and out["reasons"] == ["untrusted-signer"]
    assert "keys trust" in out["explanations"][0]
    trusted = cli_json(root, "keys", "trust", str(issuing_crt))
    assert trusted["fingerprint"] == certified_copy["result"]["signer_fingerprint"]
    assert verify(root, certified_copy["pdf"])["valid"]


def test_unexecuted_request_is_refused(executed_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.pdf"
    result = cli(executed_root, "certify", "--request", "2", "--out", str(out), process=True)
    assert_clean_error(result, "only an executed or verified erasure can be certified")
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_missing_passphrase_is_a_clear_error(executed_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.pdf"
    result = cli(executed_root, "certify", "--request", "1", "--out", str(out),
                 env={"UNPROMPT_KEY_PASSPHRASE": ""})
    assert_clean_error(result, "UNPROMPT_KEY_PASSPHRASE")
    assert not out.exists()


def test_wrong_passphrase_is_a_clear_error(executed_root: Path, tmp_path: Path) -> None:
    from reports.keys import ensure_signing_key

    root = tmp_path / "ws"
    shutil.copytree(executed_root, root)
    ensure_signing_key(root / "keys", b"the real passphrase")
    out = tmp_path / "c.pdf"
    result = cli(root, "certify", "--request", "1", "--out", str(out),
                 env={"UNPROMPT_KEY_PASSPHRASE": "a wrong one"})
    assert_clean_error(result, "wrong passphrase")
    assert not out.exists()
    status = cli_json(root, "request", "list")["requests"]
    assert {q["id"]: q["status"] for q in status}[1] in ("executed", "verified")


def test_import_of_a_missing_key_file_is_a_clear_error(executed_root: Path,
                                                       tmp_path: Path) -> None:
    result = cli(executed_root, "keys", "import", str(tmp_path / "nowhere.p12"))
    assert_clean_error(result, "does not exist")


def test_verify_a_missing_file_is_a_clear_error(executed_root: Path, tmp_path: Path) -> None:
    assert_clean_error(cli(executed_root, "verify", str(tmp_path / "none.pdf")),
                       "does not exist")


def test_certify_job_for_the_worker(executed_root: Path, tmp_path: Path) -> None:
    """The GUI's job: progress dicts, then the same result as the CLI; the passphrase is
    an argument of a job whose first parameter is not ``workspace``, so no Job row."""
    from engine.jobs import run_job
    from reports.certify_service import certify_job
    from storage.models import Job
    from storage.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(executed_root, root)
    seen: list = []
    result = run_job(certify_job(str(root), 1, str(tmp_path / "c.pdf"), "alice", "pw"),
                     seen.append)
    assert result["status"] == "certified" and (tmp_path / "c.pdf").is_file()
    assert seen and all(0.0 <= (getattr(s, "fraction", None) or 0.0) <= 1.0 for s in seen)
    assert verify(root, tmp_path / "c.pdf")["valid"]
    ws = Workspace.open(root)
    with ws.sessions() as session:
        assert session.query(Job).filter(Job.kind == "certify").count() == 0
    ws.close()
