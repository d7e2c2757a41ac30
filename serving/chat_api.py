"""OpenAI-compatible routes for guarded language models (docs/design.md section 13).

The prompt is the last user message, answered through ``guarded_answer`` with the model's
active rules, exactly as `guard ask` answers it. A flagged prompt gets its corrupted answer
in the same response shape as any other: nothing says that a rule matched (a refusal would
itself disclose that someone asked for an erasure). Only the count of flagged prompts goes
to the metrics; prompts and answers are never logged.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Depends, Request

from serving.app import read_body, require, state_of
from serving.inputs import BadRequest, parse_json
from serving.models import ServedLM

router = APIRouter()
CHAT = Depends(require("chat"))
MAX_PROMPT_CHARS = 4000
MAX_NEW_TOKENS = 256
_GENERATE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unprompt-generate")


@router.get("/v1/models", dependencies=[CHAT])
async def list_models(request: Request) -> dict[str, Any]:
    lms = state_of(request).live.lms
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "unprompt"}
        for name in sorted(lms)]}


@router.post("/v1/chat/completions", dependencies=[CHAT])
async def chat_completions(request: Request) -> dict[str, Any]:
    state = state_of(request)
    body = parse_json(await read_body(request))
    served = _served_lm(state.live.lms, body.get("model"))
    prompt = last_user_message(body.get("messages"))
    max_tokens = _max_tokens(body)
    if body.get("stream"):
        raise BadRequest(400, "streaming is not supported; send stream: false")
    result, tokens = await asyncio.get_running_loop().run_in_executor(
        _GENERATE, _answer, served, state.device, prompt, max_tokens)
    if result.flagged:
        state.metrics.flag()
    return {
        "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
        "created": int(time.time()), "model": served.spec.name,
        "system_fingerprint": served.spec.fingerprint,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.answer},
                     "finish_reason": "length" if tokens[1] >= max_tokens else "stop"}],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                  "total_tokens": tokens[0] + tokens[1]},
    }


def _answer(served: ServedLM, device: str, prompt: str, max_tokens: int) -> tuple[Any, Any]:
    from engine.guard.guard import guarded_answer

    lm = served.language_model(device)
    result = guarded_answer(lm, served.guard, prompt, max_tokens)
    count = len(lm.tokenizer(prompt)["input_ids"]), len(lm.tokenizer(result.answer)["input_ids"])
    return result, count


def _served_lm(lms: dict[str, ServedLM], name: Any) -> ServedLM:
    if not isinstance(name, str) or not name:
        raise BadRequest(400, "model must name a served language model (see GET /v1/models)")
    if name not in lms:
        raise BadRequest(404, f"no language model named {name!r} is served")
    return lms[name]


def last_user_message(messages: Any) -> str:
    """The prompt: the content of the last message, which must be the user's."""
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        raise BadRequest(400, "messages must be a non-empty list of {role, content} objects")
    last = messages[-1]
    if last.get("role") != "user":
        raise BadRequest(400, "the last message must be the user's")
    content = last.get("content")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        content = "\n".join(p for p in parts if isinstance(p, str)) if parts else None
    if not isinstance(content, str) or not content.strip():
        raise BadRequest(400, "the prompt is empty")
    if len(content) > MAX_PROMPT_CHARS:
        raise BadRequest(413, f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
    return content


def _max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens", 64))
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_NEW_TOKENS:
        raise BadRequest(400, f"max_tokens must be an integer from 1 to {MAX_NEW_TOKENS}")
    return value
