"""Anchors, trust, revocation and expiry with a real certificate (issue 14, items 7, 8, 10).

Each test works on its own copy of the session's certified workspace (tests/reports/chain.py).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.cli.helpers import assert_clean_error
from tests.reports.chain import PASS, cli, cli_json

DAY = dt.timedelta(days=1)


@pytest.fixture()
def copy(certified: dict, tmp_path: Path) -> dict:
    root = tmp_path / "ws"
    shutil.copytree(certified["root"], root)
    pdf = tmp_path / "cert.pdf"
    shutil.copyfile(certified["pdf"], pdf)
    issuer = tmp_path / "issuer.crt"
    shutil.copyfile(root / "keys" / "signing.crt", issuer)
    return {**certified, "root": root, "pdf": pdf, "issuer": issuer}


def verify(root: Path, pdf: Path, *extra: str) -> dict:
    result = cli(root, "verify", str(pdf), *extra, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    out = json.loads(result.stdout)
    assert (result.returncode == 0) == out["valid"]
    return out


def log_verify(root: Path) -> dict:
    result = cli(root, "log", "verify", "--json")
    out = json.loads(result.stdout)
    assert (result.returncode == 0) == out["valid"]
    return out


def _delete_from(root: Path, seq: int) -> None:
    conn = sqlite3.connect(root / "registry.db")
    conn.execute("DELETE FROM audit_log WHERE seq >= ?", (seq,))
    conn.commit()
    conn.close()


# item 7: anchors

def test_certificate_is_checkpointed_and_anchored(copy: dict) -> None:
    out = log_verify(copy["root"])
    assert out["valid"] and out["problems"] == []
    assert out["anchors"]["checked"] == 2  # the registry row and the stored copy
    latest = out["checkpoints"]["latest"]
    assert latest["occasion"] == {"kind": "certificate",
                                  "certificate": copy["result"]["certificate_id"]}


def test_truncated_log_names_the_certificate_and_checkpoint(copy: dict) -> None:
    stored = copy["root"] / "certificates" / f"{copy['result']['certificate_id']}.json"
    manifest = json.loads(stored.read_text())
    head = manifest["audit_log_head"]["seq"]
    _delete_from(copy["root"], head)
    result = cli(copy["root"], "log", "verify")
    assert result.returncode == 1
    assert "Audit log NOT VALID" in result.stdout
    assert f"certificate {copy['result']['certificate_id']} anchors a head that is gone: " \
           f"entry {head} is no longer in the log" in result.stdout
    assert "checkpoint checkpoint-" in result.stdout


def test_period_report_writes_a_checkpoint(copy: dict, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    r = cli_json(copy["root"], "report", "--from", (today - 60 * DAY).isoformat(),
                 "--to", today.isoformat(), "--out", str(tmp_path / "r.pdf"))
    out = log_verify(copy["root"])
    assert out["valid"] and out["checkpoints"]["checked"] == 2
    latest = out["checkpoints"]["latest"]
    assert latest["file"] == r["checkpoint"] and latest["occasion"]["kind"] == "period-report"
    assert latest["occasion"]["report_head"]["hash"] == r["log_head"]


def test_log_checkpoint_on_demand(copy: dict) -> None:
    made = cli_json(copy["root"], "log", "checkpoint")
    assert (copy["root"] / "checkpoints" / made["file"]).is_file()
    assert log_verify(copy["root"])["checkpoints"]["latest"]["file"] == made["file"]


# item 10: trust only what the log pinned; auditors without the workspace

def test_dropped_pem_is_ignored_until_pinned(copy: dict, tmp_path: Path) -> None:
    """Another workspace: a certificate file dropped into keys/trusted/ is not trusted
    (verify names it); `keys trust` pins it in the log, and then the certificate verifies
    although this registry has no record of it."""
    other = tmp_path / "auditor"
    cli_json(other, "settings")  # an empty workspace
    (other / "keys" / "trusted").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copy["issuer"], other / "keys" / "trusted" / "dropped.pem")
    out = verify(other, copy["pdf"])
    assert out["reasons"] == ["untrusted-signer", "not-in-registry"]
    assert any("dropped.pem" in note for note in out["notes"])
    assert cli_json(other, "keys", "show")["ignored"] == ["dropped.pem"]
    cli_json(other, "keys", "trust", str(copy["issuer"]))
    out = verify(other, copy["pdf"])
    assert out["valid"] and out["reasons"] == []
    assert any("another workspace" in note for note in out["notes"])


def test_trust_flag_verifies_in_another_workspace_without_pinning(copy: dict,
                                                                   tmp_path: Path) -> None:
    other = tmp_path / "auditor"
    cli_json(other, "settings")  # an empty workspace
    out = verify(other, copy["pdf"], "--trust", str(copy["issuer"]))
    assert out["valid"], out
    assert cli_json(other, "keys", "show")["trusted"] == []


def test_offline_verify_creates_no_workspace(copy: dict, tmp_path: Path) -> None:
    nowhere = tmp_path / "no-such-workspace"
    out = verify(nowhere, copy["pdf"], "--offline", "--trust", str(copy["issuer"]))
    assert out["valid"] and out["summary"]["request"] == 1
    assert "Offline" in out["notes"][0]
    assert not nowhere.exists()


def test_offline_verify_with_the_wrong_key_fails(copy: dict, tmp_path: Path) -> None:
    from reports.keys import ensure_signing_key

    stranger = ensure_signing_key(tmp_path / "stranger", b"pw")
    pem = tmp_path / "stranger.pem"
    pem.write_bytes(stranger.certificate_pem)
    out = verify(tmp_path / "none", copy["pdf"], "--offline", "--trust", str(pem))
    assert out["reasons"] == ["untrusted-signer"]
    assert not (tmp_path / "none").exists()


def test_offline_without_a_key_is_a_clear_error(copy: dict, tmp_path: Path) -> None:
    result = cli(tmp_path / "none", "verify", str(copy["pdf"]), "--offline")
    assert_clean_error(result, "--trust KEY.pem")
    assert not (tmp_path / "none").exists()


# item 8: revocation

def _forged(root: Path) -> bytes:
    """A certificate signed with the workspace key after it was stolen (not in the log)."""
    from reports.keys import load_signing_key
    from reports.manifest import build_manifest
    from reports.pdf_certificate import render_certificate_pdf
    from reports.signing import sign_pdf
    from tests.reports.sample import sample_facts

    identity = load_signing_key(root / "keys", PASS["UNPROMPT_KEY_PASSPHRASE"].encode())
    return sign_pdf(render_certificate_pdf(build_manifest(sample_facts()), None), identity)


def test_revoked_key_keeps_earlier_certificates_and_fails_later_ones(copy: dict,
                                                                      tmp_path: Path) -> None:
    root, fingerprint = copy["root"], copy["result"]["signer_fingerprint"]
    revoked = cli_json(root, "keys", "revoke", fingerprint, "--reason", "laptop stolen")
    assert revoked["fingerprint"] == fingerprint
    earlier = verify(root, copy["pdf"])
    assert earlier["valid"] and any("issued before it" in n for n in earlier["notes"])
    forged = tmp_path / "forged.pdf"
    forged.write_bytes(_forged(root))
    later = verify(root, forged)
    assert "signer-key-revoked" in later["reasons"]
    assert any("revoked" in e for e in later["explanations"])
    assert_clean_error(cli(root, "log", "checkpoint"), "was revoked")
    assert_clean_error(cli(root, "keys", "revoke", fingerprint, "--reason", "again"),
                       "already revoked")
    assert log_verify(root)["valid"]


def test_revoking_an_unknown_key_is_a_clear_error(copy: dict) -> None:
    assert_clean_error(cli(copy["root"], "keys", "revoke", "ab" * 32, "--reason", "x"),
                       "is pinned in the audit log")


# item 8: expiry, attested by the workspace's own checkpoint

def _p12(identity: object, passphrase: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    return pkcs12.serialize_key_and_certificates(
        b"org", identity.key, identity.certificate, None,
        serialization.BestAvailableEncryption(passphrase))


def test_expired_key_is_valid_at_signing_by_its_checkpoint(
        executed_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key that expired yesterday signed two days ago (the workspace's clock, for the log,
    the checkpoint and the validity checks, is set back; nothing sleeps)."""
    from reports import keys
    from reports.certify_service import certify, verify_file
    from reports.key_admin import import_key
    from storage import auditlog
    from storage.workspace import Workspace
    from tests.reports.sample import org_identity

    root = tmp_path / "ws"
    shutil.copytree(executed_root, root)
    expired = org_identity(days=-1)
    (tmp_path / "org.p12").write_bytes(_p12(expired, b"pw"))
    then = dt.datetime.now(dt.UTC) - 2 * DAY
    check = keys.check_validity
    monkeypatch.setattr(auditlog, "utcnow", lambda: then)
    for where in ("reports.keys", "reports.signing"):
        monkeypatch.setattr(f"{where}.check_validity", lambda c, at=None: check(c, then))
    ws = Workspace.open(root)
    try:
        import_key(ws, tmp_path / "org.p12", b"pw", "alice")
        issued = certify(ws, 1, tmp_path / "c.pdf", operator="alice", passphrase=b"pw")
        monkeypatch.undo()
        out = verify_file(ws, tmp_path / "c.pdf")
        assert out["valid"], out
        assert any(n.startswith("Valid at signing") for n in out["notes"])
        for path in (root / "checkpoints").glob("*.json"):
            path.unlink()
        out = verify_file(ws, tmp_path / "c.pdf")
        assert out["reasons"] == ["signer-certificate-expired"]
    finally:
        ws.close()
    assert issued["signer_fingerprint"] == keys.certificate_fingerprint(expired.certificate)
