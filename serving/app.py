"""The ASGI app: routes, bearer tokens, errors and metrics (docs/design.md section 13).

``create_app`` wires a ``LiveRegistry`` (the live versions), a ``MicroBatcher`` (image
requests) and ``Metrics`` into FastAPI. Every error is a 4xx/5xx with a JSON body: the
KServe v2 shape ``{"error": "..."}`` on image routes and the OpenAI shape
``{"error": {"message": ..., "type": ...}}`` on ``/v1/chat/completions`` and ``/v1/models``.
Nothing the server does writes to the workspace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.batching import MicroBatcher
from serving.inputs import MAX_BODY_BYTES, BadRequest
from serving.live import LiveRegistry
from serving.metrics import Metrics
from storage.tokens import token_hash

OPENAI_PATHS = ("/v1/chat/", "/v1/models")  # exactly /v1/models; /v1/models/NAME/predict
OPEN_PATHS = ("/v2/health", "/metrics")


@dataclass
class ServerState:
    """Everything the routes share; none of it outlives the process (caches only)."""

    live: LiveRegistry
    batcher: MicroBatcher
    metrics: Metrics
    device: str
    started: float


def create_app(live: LiveRegistry, *, device: str = "cpu", max_batch: int = 32,
               max_wait_ms: float = 2.0) -> FastAPI:
    """The app over a started ``live`` registry (the caller starts and stops it)."""
    from serving.chat_api import router as chat_router
    from serving.images_api import router as image_router

    metrics = Metrics()
    live.on_swap = lambda swap: metrics.swap(swap["model"], swap["at"])
    for swap in live.swaps:  # the versions loaded at start-up
        metrics.swap(swap["model"], swap["at"])
    batcher = MicroBatcher(max_batch, max_wait_ms / 1e3, metrics.batch_size)
    state = ServerState(live, batcher, metrics, device, time.time())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="Unprompt inference server", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.unprompt = state
    app.include_router(image_router)
    app.include_router(chat_router)
    _install_errors(app)
    app.add_middleware(Measured)

    @app.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def state_of(request: Request) -> ServerState:
    return request.app.state.unprompt


def require(scope: str) -> Callable[[Request], Any]:
    """A dependency: the bearer token must be active and have ``scope`` (401 / 403). Async,
    so that FastAPI runs it on the event loop rather than handing it to a thread."""

    async def check(request: Request) -> tuple[str, str]:
        await state_of(request).live.fresh()  # never the state before a commit (section 13.2)
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise BadRequest(401, "a bearer token is required (Authorization: Bearer ...; "
                                  "create one with `token new`)")
        found = state_of(request).live.tokens.get(token_hash(token.strip()))
        if found is None:
            raise BadRequest(401, "the bearer token is unknown or revoked")
        if found[1] != scope:
            raise BadRequest(403, f"this token's scope is {found[1]!r}; this route needs "
                                  f"{scope!r}")
        return found

    return check


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past ``MAX_BODY_BYTES`` (read in chunks, never whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the request body is larger than {MAX_BODY_BYTES // 2**20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, f"the request body is larger than "
                                  f"{MAX_BODY_BYTES // 2**20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(request: Request, status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    path = request.url.path.rstrip("/")
    if path.startswith(OPENAI_PATHS[0]) or path == OPENAI_PATHS[1]:
        kind = {401: "authentication_error", 403: "permission_error",
                404: "not_found_error"}.get(status, "invalid_request_error")
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": status}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "no such route", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail))
        return error_response(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 400, "the request is malformed")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, 500, f"internal error ({type(exc).__name__})")


class Measured:
    """Pure ASGI middleware: each request's route, model, status and time into the metrics
    (Starlette's BaseHTTPMiddleware would add a task and two streams to every request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]
        batcher = scope["app"].state.unprompt.batcher
        image = scope["method"] == "POST" and scope["path"].endswith(("/infer", "/predict"))
        batcher.inflight += image  # the batcher waits for requests still being read

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            batcher.inflight -= image
            _record(scope, status[0], time.perf_counter() - started)


def _record(scope: dict, status: int, seconds: float) -> None:
    route = scope.get("route")
    path = getattr(route, "path", "unmatched")
    name = (scope.get("path_params") or {}).get("name", "") if route is not None else ""
    state: ServerState = scope["app"].state.unprompt
    live = state.live
    known = name if name in live.images or name in live.lms else ""
    state.metrics.request(path, known, status, seconds)
