"""Shared fixtures: every test gets its own workspace folder and a quiet, seeded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def workspace_dir(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture()
def workspace(workspace_dir: Path):
    from storage.workspace import Workspace

    ws = Workspace.open(workspace_dir)
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the real user-data workspace."""
    monkeypatch.setenv("UNPROMPT_WORKSPACE", str(tmp_path / "default-ws"))
    monkeypatch.delenv("UNPROMPT_DB_URL", raising=False)
