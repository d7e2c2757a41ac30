"""Running the app: uvicorn in the foreground (`serve`) or in a thread (tests, benchmarks).

The server only reads the workspace: it opens it, starts the registry watch and answers
until it is stopped. Binding defaults to 127.0.0.1 (docs/design.md section 13).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.live import LiveRegistry
from storage.workspace import Workspace


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8321
    device: str = "auto"
    poll_ms: float = 10.0
    max_batch: int = 32
    max_wait_ms: float = 2.0
    access_log: bool = False
    forwarded_allow_ips: str | None = None
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    extra: dict[str, Any] = field(default_factory=dict)


def build(workspace: str | Path | None, options: ServeOptions) -> tuple[Any, LiveRegistry,
                                                                        Workspace]:
    """Open the workspace, read the live versions once, and build the app over them."""
    from engine.device import resolve_device
    from serving.app import create_app

    device = resolve_device(options.device)
    _warm_up()
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    ws = Workspace.open(workspace, create=False)
    live = LiveRegistry(ws, device, options.poll_ms / 1e3)
    try:
        live.start()
    except BaseException:
        live.stop()
        ws.close()
        raise
    app = create_app(live, device=str(device), max_batch=options.max_batch,
                     max_wait_ms=options.max_wait_ms)
    return app, live, ws


def _warm_up() -> None:
    """Import the image decoders now: the first upload would otherwise stall the event loop
    for the import (hundreds of milliseconds on a busy machine)."""
    from PIL import Image

    Image.init()


def _config(app: Any, options: ServeOptions) -> Any:
    import uvicorn

    extra = {"forwarded_allow_ips": options.forwarded_allow_ips,
             "proxy_headers": True} if options.forwarded_allow_ips else {}
    return uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                          access_log=options.access_log, lifespan="on", **extra)


def serve_forever(workspace: str | Path | None, options: ServeOptions,
                  announce: Any = None) -> None:
    """`serve`: answer until interrupted (``announce(url)`` once it is about to listen)."""
    import uvicorn

    check_port(options.host, options.port)
    app, live, ws = build(workspace, options)
    if announce is not None:
        announce(f"http://{options.host}:{options.port}")
    try:
        uvicorn.Server(_config(app, options)).run()
    finally:
        live.stop()
        ws.close()


def check_port(host: str, port: int) -> None:
    """Refuse, in one sentence, an address that cannot be bound (before loading anything)."""
    from storage.errors import UnpromptError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(" (")[0]
        raise UnpromptError(f"cannot listen on {host}:{port}: {reason}; "
                            "choose another --port or --host") from None


class BackgroundServer:
    """The server on an ephemeral loopback port in a daemon thread; a context manager."""

    def __init__(self, workspace: str | Path, **options: Any) -> None:
        import uvicorn

        self.options = ServeOptions(port=0, device=options.pop("device", "cpu"), **options)
        self.app, self.live, self.ws = build(workspace, self.options)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.options.host, 0))
        self.port = self._socket.getsockname()[1]
        self.server = uvicorn.Server(_config(self.app, self.options))
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="unprompt: test server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._thread.join(0.005)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self.live.stop()
        self.ws.close()
