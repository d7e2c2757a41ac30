"""Bearer tokens: hashed in the registry, logged, scoped, revocable; 401/403 serve nothing."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from storage import auditlog, tokens
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import ServingToken
from storage.workspace import Workspace
from tests.serving.conftest import Served, new_token, tensor_body, wait_until


def test_only_the_hash_is_stored_and_creation_and_revocation_are_logged(workspace) -> None:
    with workspace.sessions.begin() as session:
        secret, row = tokens.create_token(session, "shop", "predict", "alice")
    with workspace.sessions.begin() as session:
        tokens.revoke_token(session, "shop", "bob")
    with workspace.sessions() as session:
        stored = session.get(ServingToken, row.id)
        assert stored.token_hash == tokens.token_hash(secret) and secret not in str(
            tokens.token_dict(stored))
        assert stored.status == "revoked"
        log = auditlog.entries_of(session, ("token.created", "token.revoked"))
        assert [(e.action, e.actor, p["name"]) for e, p in log] == [
            ("token.created", "alice", "shop"), ("token.revoked", "bob", "shop")]
        assert all(secret not in e.payload for e, _ in log)
        assert auditlog.verify(session).valid


def test_bad_token_requests_change_nothing(workspace) -> None:
    with workspace.sessions.begin() as session:
        tokens.create_token(session, "shop", "predict", "alice")
    with pytest.raises(RefusedError), workspace.sessions.begin() as session:
        tokens.create_token(session, "shop", "chat", "alice")
    with pytest.raises(UnpromptError), workspace.sessions.begin() as session:
        tokens.create_token(session, "other", "admin", "alice")
    with pytest.raises(NotFoundError), workspace.sessions.begin() as session:
        tokens.revoke_token(session, "nobody", "alice")
    with workspace.sessions() as session:
        assert len(tokens.list_tokens(session)) == 1
        assert auditlog.verify(session).entries == 1


def test_missing_unknown_wrong_scope_and_revoked_tokens_are_refused(served: Served) -> None:
    chat = new_token(served.root, "chatbot", "chat")
    url = served.server.url
    body = tensor_body()

    def post(headers: dict) -> httpx.Response:
        return httpx.post(f"{url}/v2/models/demo/infer", json=body, headers=headers)

    assert post({}).status_code == 401
    assert post({"Authorization": "Bearer upt_not-a-token"}).status_code == 401
    assert post({"Authorization": f"Basic {served.token}"}).status_code == 401
    live = served.server.live
    wait_until(lambda: live.generation >= 2, "the chat token")
    wrong = post({"Authorization": f"Bearer {chat}"})
    assert wrong.status_code == 403 and "scope" in wrong.json()["error"]
    assert post({"Authorization": f"Bearer {served.token}"}).status_code == 200
    ws = Workspace.open(served.root)
    with ws.sessions.begin() as session:
        tokens.revoke_token(session, "tests", "alice")
    ws.close()
    wait_until(lambda: live.generation >= 3, "the revocation")
    revoked = post({"Authorization": f"Bearer {served.token}"})
    assert revoked.status_code == 401 and "outputs" not in revoked.json()
    assert revoked.headers["www-authenticate"] == "Bearer"


def test_token_commands(tmp_path, capsys) -> None:
    from cli.app import main

    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "token", "new", "--name", "shop", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("upt_") and created["scope"] == "predict"
    assert main(["--workspace", ws, "token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["tokens"]
    assert [t["name"] for t in listed] == ["shop"] and "token" not in listed[0]
    assert main(["--workspace", ws, "token", "revoke", "shop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    assert main(["--workspace", ws, "token", "revoke", "shop"]) == 1
    assert "no token named" in capsys.readouterr().err
    assert main(["--workspace", ws, "serve", "--port", "70000"]) == 1
    assert "--port" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        assert main(["--workspace", ws, "serve", "--port", port]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another "
        "--port or --host")
    opened = Workspace.open(ws)
    with opened.sessions() as session:
        assert auditlog.verify(session).entries == 2
    opened.close()
