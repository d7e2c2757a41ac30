"""A tiny digits model in a workspace and the server over it on an ephemeral loopback port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage import tokens
from storage.workspace import Workspace


@pytest.fixture(scope="session")
def served_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch is enough: these tests check what is served, not how well it predicts."""
    from tests.image.conftest import train_tiny

    root = tmp_path_factory.mktemp("served") / "ws"
    train_tiny(root, epochs=1, max_per_class=20)
    return root


@pytest.fixture()
def ws_root(served_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws-copy"
    shutil.copytree(served_workspace, root)
    return root


def new_token(root: Path, name: str, scope: str = "predict") -> str:
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            secret, _row = tokens.create_token(session, name, scope, "alice")
        return secret
    finally:
        ws.close()


@dataclass
class Served:
    root: Path
    server: object
    client: object  # httpx.Client with the predict token
    token: str


def _serve(root: Path) -> Iterator[Served]:
    import httpx
    import torch

    from serving.server import BackgroundServer

    torch.set_num_threads(1)
    token = new_token(root, "tests")
    with BackgroundServer(root, poll_ms=2.0) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"},
            timeout=30) as client:
        yield Served(root, server, client, token)


@pytest.fixture()
def served(ws_root: Path) -> Iterator[Served]:
    """A server over a private copy of the workspace (for tests that change it)."""
    yield from _serve(ws_root)


@pytest.fixture(scope="module")
def shared(served_workspace: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """One server per module, for tests that only read."""
    root = tmp_path_factory.mktemp("shared") / "ws"
    shutil.copytree(served_workspace, root)
    yield from _serve(root)


def wait_until(condition, what: str, limit_s: float = 60.0) -> None:  # noqa: ANN001
    """Wait for the server's watch thread (bounded, so a broken swap fails instead of hanging;
    no test asserts on how long it took)."""
    import time

    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.002)


def tensor_body(n: int = 1, value: float = 0.0) -> dict:
    return {"inputs": [{"name": "input", "shape": [n, 1, 8, 8], "datatype": "FP32",
                        "data": [value] * (n * 64)}]}


def png_bytes(size: tuple[int, int] = (8, 8), seed: int = 0) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()
