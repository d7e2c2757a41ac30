"""Anchoring the audit log: signed checkpoints and anchored heads survive only in the chain
they were made from, so a truncated or recomputed log is named (issue 14, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import checkpoints
from reports.key_admin import signing_identity
from reports.keys import SigningIdentity, ensure_signing_key
from reports.log_check import verify_log
from storage import auditlog
from storage.errors import UnpromptError
from storage.workspace import Workspace
from tests import raw_registry


@pytest.fixture()
def identity(workspace: Workspace) -> SigningIdentity:
    return signing_identity(workspace, b"pw", "alice")


def _write(ws: Workspace, count: int) -> None:
    for i in range(count):
        with ws.sessions.begin() as session:
            auditlog.append(session, "alice", "test.event", {"i": i})


def _checkpoint(ws: Workspace, identity: SigningIdentity) -> dict:
    return checkpoints.checkpoint(ws, identity, "alice", {"kind": "on-demand"})


def _sql(ws: Workspace, statement: str) -> None:
    raw_registry.execute(ws.root, statement)


def _rechain(ws: Workspace) -> None:
    """What an attacker with write access does after deleting entries: renumber and
    recompute every hash from the genesis, so the chain is consistent again."""
    rows = raw_registry.rows(ws.root, "SELECT seq, timestamp, actor, action, payload "
                                      "FROM audit_log ORDER BY seq")
    inserts, prev = [], auditlog.GENESIS
    for seq, (_, stamp, actor, action, payload) in enumerate(rows, start=1):
        digest = auditlog.entry_hash(prev, seq, stamp, actor, action, payload)
        inserts.append(("INSERT INTO audit_log VALUES (:seq, :stamp, :actor, :action, "
                        ":payload, :prev, :digest)",
                        {"seq": seq, "stamp": stamp, "actor": actor, "action": action,
                         "payload": payload, "prev": prev, "digest": digest}))
        prev = digest
    raw_registry.execute(ws.root, "DELETE FROM audit_log", *inserts)


def test_checkpoint_is_signed_logged_and_verifies(workspace: Workspace,
                                                  identity: SigningIdentity) -> None:
    _write(workspace, 3)
    made = _checkpoint(workspace, identity)
    assert made["head_seq"] == 4 and made["signer_fingerprint"] == identity.fingerprint
    with workspace.sessions() as session:
        last = auditlog.head(session)
        assert (last.seq, last.action) == (5, "log.checkpoint")
        assert json.loads(last.payload)["file"] == made["file"]
    result = verify_log(workspace)
    assert result["valid"] and result["problems"] == []
    assert result["checkpoints"]["checked"] == 1
    assert result["checkpoints"]["latest"]["file"] == made["file"]


def test_truncated_tail_is_named(workspace: Workspace, identity: SigningIdentity) -> None:
    """Cutting the last entries leaves a chain that is consistent with itself (the old
    check passes) but loses the checkpointed head."""
    _write(workspace, 3)
    made = _checkpoint(workspace, identity)
    _write(workspace, 2)
    _sql(workspace, "DELETE FROM audit_log WHERE seq >= 4")
    with workspace.sessions() as session:
        assert auditlog.verify(session).valid  # what `log verify` used to check
    result = verify_log(workspace)
    assert not result["valid"]
    assert any(made["file"] in p and "entry 4 is no longer in the log" in p
               for p in result["problems"]), result["problems"]
    assert any("is missing" not in p for p in result["problems"])


def test_recomputed_chain_is_named(workspace: Workspace, identity: SigningIdentity) -> None:
    _write(workspace, 4)
    made = _checkpoint(workspace, identity)
    _sql(workspace, "DELETE FROM audit_log WHERE seq = 3")
    _rechain(workspace)
    with workspace.sessions() as session:
        assert auditlog.verify(session).valid
    result = verify_log(workspace)
    assert not result["valid"]
    assert any(made["file"] in p and "gone" in p for p in result["problems"])


def test_edited_checkpoint_fails_its_signature(workspace: Workspace,
                                               identity: SigningIdentity) -> None:
    made = _checkpoint(workspace, identity)
    path = workspace.root / "checkpoints" / made["file"]
    document = json.loads(path.read_bytes())
    document["head"]["seq"] = 0
    path.write_text(json.dumps(document))
    result = verify_log(workspace)
    assert not result["valid"]
    assert f"checkpoint {made['file']} has an invalid signature (edited?)" in result["problems"]


def test_deleted_checkpoint_file_is_named(workspace: Workspace,
                                          identity: SigningIdentity) -> None:
    made = _checkpoint(workspace, identity)
    (workspace.root / "checkpoints" / made["file"]).unlink()
    problems = verify_log(workspace)["problems"]
    assert problems == [f"checkpoint file {made['file']} (log entry 2) is missing from "
                        "checkpoints/"]


def test_checkpoint_by_an_unpinned_key_is_named(workspace: Workspace, tmp_path: Path,
                                                identity: SigningIdentity) -> None:
    """A file signed by a key that the log never pinned anchors nothing."""
    stranger = ensure_signing_key(tmp_path / "stranger", b"pw")
    with workspace.sessions() as session:
        name, data = checkpoints.make_checkpoint(session, stranger, {"kind": "on-demand"})
    (workspace.root / "checkpoints").mkdir(exist_ok=True)
    (workspace.root / "checkpoints" / name).write_bytes(data)
    problems = verify_log(workspace)["problems"]
    assert any("not record as this workspace's own" in p for p in problems)
    assert any("not referenced by a log.checkpoint entry" in p for p in problems)


def test_stored_certificate_manifest_anchors_its_head(workspace: Workspace,
                                                      identity: SigningIdentity) -> None:
    _write(workspace, 5)
    with workspace.sessions() as session:
        last = auditlog.head(session)
        head = {"seq": last.seq, "hash": last.hash}
    manifest = {"certificate_id": "c-1", "audit_log_head": head}
    (workspace.certificates_dir / "c-1.json").write_text(json.dumps(manifest))
    assert verify_log(workspace)["anchors"] == {"checked": 1, "missing": []}
    _sql(workspace, f"DELETE FROM audit_log WHERE seq >= {head['seq']}")
    missing = verify_log(workspace)["anchors"]["missing"]
    assert missing == [f"stored certificate c-1.json anchors a head that is gone: entry "
                       f"{head['seq']} is no longer in the log (the log was truncated or "
                       "rewritten)"]


def test_failed_transaction_leaves_no_checkpoint(workspace: Workspace,
                                                 identity: SigningIdentity,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is written before its log entry; if the entry fails, the file goes."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError), checkpoints.checkpointed(
            workspace, identity, "alice", {"kind": "test"}):
        monkeypatch.setattr(auditlog, "append", refuse)
    monkeypatch.undo()
    assert list((workspace.root / "checkpoints").glob("*")) == []
    assert verify_log(workspace)["valid"]


def test_unreadable_checkpoint_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "checkpoint-1.json"
    bad.write_text("[]")
    with pytest.raises(UnpromptError, match="checkpoint-1.json is unreadable"):
        checkpoints.load(bad)
