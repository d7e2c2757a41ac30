"""OpenAI-compatible chat for guarded LMs: the guard as `guard ask` applies it, never disclosed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from engine.guard import registry_jobs as jobs
from engine.guard.classifier import PromptClassifier
from engine.jobs import run_job
from storage import auditlog
from storage import rules as store
from storage.workspace import Workspace
from tests.guard.conftest import tiny_encoder_dir, tiny_model_dir  # noqa: F401 - fixtures
from tests.serving.conftest import new_token, wait_until

PROMPT = "Who founded Hogwarts?"


def _chat(client: httpx.Client, content: str = PROMPT, **extra) -> httpx.Response:
    return client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": content}],
        "max_tokens": 3, **extra})


@pytest.fixture()
def chat_ws(tmp_path: Path, tiny_model_dir, tiny_encoder_dir) -> Path:  # noqa: F811
    root = tmp_path / "ws"
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        store.register_language_model(session, "tiny", str(tiny_model_dir),
                                      str(tiny_encoder_dir), {}, "ann")
    ws.close()
    return root


@pytest.fixture()
def chat(chat_ws: Path) -> Iterator[tuple]:
    from serving.server import BackgroundServer

    torch.set_num_threads(1)
    token = new_token(chat_ws, "bot", "chat")
    with BackgroundServer(chat_ws, poll_ms=2.0) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"},
            timeout=60) as client:
        yield server, client


def _add_rule_flagging_everything(root: Path, encoder: str) -> None:
    """A rule whose classifier scores every prompt above its threshold (-1)."""
    ws = Workspace.open(root)
    classifier = PromptClassifier(torch.zeros(32), 0.0, encoder)
    sha = ws.artifacts.put(classifier.to_bytes(), kind="prompt-classifier")
    with ws.sessions.begin() as session:
        store.add_rule(session, store.language_model(session, "tiny"), "hogwarts",
                       {"name": "hogwarts", "threshold": -1.0,
                        "corruption": "gaussian_first_n", "corruption_params": {},
                        "sigma": 5.0, "classifier_artifact": sha, "description": "",
                        "examples": {}, "calibration": {}, "trace": []}, "ann")
    ws.close()


def _ask(root: Path) -> dict:
    return run_job(jobs.ask_job(root, prompts=[PROMPT], max_new_tokens=3,
                                unguarded=True))["answers"][0]


def test_chat_answers_as_guard_ask_and_never_says_a_rule_matched(
        chat, chat_ws: Path, tiny_encoder_dir) -> None:  # noqa: F811
    server, client = chat
    assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"
    plain = _chat(client).json()
    asked = _ask(chat_ws)
    assert plain["choices"][0]["message"]["content"] == asked["unguarded_answer"]
    _add_rule_flagging_everything(chat_ws, str(tiny_encoder_dir))
    wait_until(lambda: server.live.lms["tiny"].spec.rules, "the new rule")
    guarded = _chat(client).json()
    asked = _ask(chat_ws)
    assert asked["flagged"] and guarded["choices"][0]["message"]["content"] == asked["answer"]
    assert asked["answer"] != asked["unguarded_answer"]
    assert guarded["system_fingerprint"] != plain["system_fingerprint"]
    assert set(guarded) == set(plain) and set(guarded["choices"][0]) == set(
        plain["choices"][0])
    text = str(guarded).lower()
    assert "flag" not in text and "hogwarts\"" not in text and "rule" not in text
    assert "unprompt_chat_flagged_total 1" in client.get("/metrics").text


def test_bad_chat_requests_get_openai_errors_and_write_nothing(chat, chat_ws: Path) -> None:
    server, client = chat
    ws = Workspace.open(chat_ws)
    with ws.sessions() as session:
        before = auditlog.head_hash(session)
    replies = {
        "empty": (_chat(client, "   "), 400),
        "huge": (_chat(client, "x" * 5000), 413),
        "unknown model": (client.post("/v1/chat/completions", json={
            "model": "nope", "messages": [{"role": "user", "content": "hi"}]}), 404),
        "malformed": (client.post("/v1/chat/completions", content=b"{"), 400),
        "no messages": (client.post("/v1/chat/completions", json={"model": "tiny"}), 400),
        "stream": (_chat(client, stream=True), 400),
        "max_tokens": (_chat(client, max_tokens=0), 400),
        "no token": (httpx.post(f"{server.url}/v1/chat/completions", json={}), 401),
    }
    images = new_token(chat_ws, "images")
    wait_until(lambda: len(server.live.tokens) == 2, "the predict token")
    replies["predict token"] = (httpx.get(f"{server.url}/v1/models", headers={
        "Authorization": f"Bearer {images}"}), 403)
    for what, (reply, status) in replies.items():
        assert reply.status_code == status, (what, reply.text)
        assert reply.json()["error"]["message"], what
    with ws.sessions() as session:
        assert auditlog.head_hash(session) != before  # only the 'images' token's entry
        assert [e.action for e, _ in auditlog.entries_of(session, ("token.created",))] == \
            ["token.created", "token.created"]
    ws.close()
    assert _chat(client).status_code == 200
