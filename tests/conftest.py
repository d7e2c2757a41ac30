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


# --- The registry on SQLite and on PostgreSQL (docs/design.md section 12) ---------------
# A test runs on both when it uses the ``registry_backend`` fixture (tests/storage does for
# all of its tests, other modules through ``pytest.mark.usefixtures``); a test marked
# ``sqlite_only`` (it opens the SQLite file itself) keeps only the SQLite variant, one marked
# ``postgresql_only`` (it is about several processes or machines on a server) the other.

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registry_backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker
        backends = [b for b in BACKENDS if not marker(f"{_other(b)}_only")]
        metafunc.parametrize("registry_backend", backends, indirect=True)


def _other(backend: str) -> str:
    return BACKENDS[1 - BACKENDS.index(backend)]


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/pg.py); skipped, with the
    reason, only where the server binaries are not installed."""
    from tests import pg

    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    server = pg.PostgresServer.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def postgres_url(postgres_server):
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    name = postgres_server.new_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture()
def registry_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                     _isolated_environment: None) -> str:
    """'sqlite' (the workspace's own file) or 'postgresql' (UNPROMPT_DB_URL, which every
    workspace, command and worker process of the test then uses)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        monkeypatch.setenv("UNPROMPT_DB_URL", request.getfixturevalue("postgres_url"))
    return backend
