"""RFC 3161 timestamps of log checkpoints: the request, and the whole path against the
loopback test TSA of test_timestamp.py (no network)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from reports import checkpoint_tsa, checkpoints
from reports.key_admin import signing_identity, trust
from reports.log_check import verify_log
from storage.errors import UnpromptError
from storage.settings import set_setting
from storage.workspace import Workspace
from tests.reports.test_timestamp import tsa  # noqa: F401 - the loopback TSA fixture


def test_request_names_the_digest_and_asks_for_certificates() -> None:
    digest = hashlib.sha256(b"checkpoint").digest()
    request = checkpoint_tsa.timestamp_request(digest)
    imprint = request["message_imprint"]
    assert imprint["hashed_message"].native == digest
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    assert request["cert_req"].native is True
    assert request["nonce"].native != checkpoint_tsa.timestamp_request(digest)["nonce"].native
    assert request.dump()[:1] == b"\x30"  # DER SEQUENCE, ready to POST


def _use_tsa(ws: Workspace, url: str) -> None:
    with ws.sessions.begin() as session:
        set_setting(session, "tsa_url", url, "alice")


def _pin(ws: Workspace, cert: object, tmp_path: Path) -> None:
    pem = tmp_path / "tsa.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    trust(ws, pem, "alice")


def test_checkpoint_is_timestamped_and_verified(workspace: Workspace, tsa: tuple,  # noqa: F811
                                                tmp_path: Path) -> None:
    url, tsa_cert, _ = tsa
    identity = signing_identity(workspace, b"pw", "alice")
    _pin(workspace, tsa_cert, tmp_path)
    _use_tsa(workspace, url)
    made = checkpoints.checkpoint(workspace, identity, "alice", {"kind": "on-demand"})
    assert made["token"] == made["file"] + ".tsr"
    result = verify_log(workspace)
    assert result["valid"], result["problems"]
    assert result["checkpoints"]["timestamped"] == 1
    assert result["checkpoints"]["latest"]["timestamp"] is not None
    token = workspace.root / "checkpoints" / made["token"]
    (workspace.root / "checkpoints" / made["file"]).write_bytes(b"{}")  # replaced file
    problems = verify_log(workspace)["problems"]
    assert f"timestamp {token.name}: the timestamp token does not cover this checkpoint" \
        in problems


def test_unpinned_authority_does_not_count(workspace: Workspace, tsa: tuple  # noqa: F811
                                           ) -> None:
    url, _, _ = tsa
    identity = signing_identity(workspace, b"pw", "alice")
    _use_tsa(workspace, url)
    made = checkpoints.checkpoint(workspace, identity, "alice", {"kind": "on-demand"})
    problems = verify_log(workspace)["problems"]
    assert problems == [f"timestamp {made['token']}: the timestamp authority is not trusted "
                        "here (pin its certificate with `keys trust`)"]


def test_unreachable_authority_leaves_the_checkpoint_standing(workspace: Workspace) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    identity = signing_identity(workspace, b"pw", "alice")
    _use_tsa(workspace, f"http://127.0.0.1:{port}/")
    made = checkpoints.checkpoint(workspace, identity, "alice", {"kind": "on-demand"})
    assert "did not answer" in made["timestamp_error"]
    assert not list((workspace.root / "checkpoints").glob("*.tsr"))
    assert verify_log(workspace)["valid"]


@pytest.mark.parametrize("token", [b"", b"\x30\x03abc", b"not der at all"])
def test_damaged_token_is_one_sentence(token: bytes) -> None:
    with pytest.raises(UnpromptError, match="damaged"):
        checkpoint_tsa.token_time(token, b"{}", [])
