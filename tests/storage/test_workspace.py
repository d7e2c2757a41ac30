"""The workspace folder: creation, migrations, and clear errors for unusable folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.db import alembic_config, table_names
from storage.errors import WorkspaceError
from storage.models import Base
from storage.workspace import Workspace
from tests import raw_registry


def test_new_folder_gets_the_whole_schema(workspace_dir: Path) -> None:
    raw_registry.empty_registry(workspace_dir)  # PostgreSQL: a database without any table
    ws = Workspace.open(workspace_dir)
    try:
        expected = set(Base.metadata.tables) | {"alembic_version"}
        assert expected <= set(table_names(ws.engine))
        for sub in ("artifacts", "keys", "certificates"):
            assert (workspace_dir / sub).is_dir()
    finally:
        ws.close()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_reopening_keeps_data_and_applies_nothing_twice(workspace_dir: Path) -> None:
    ws = Workspace.open(workspace_dir)
    ws.artifacts.put(b"weights")
    ws.close()
    again = Workspace.open(workspace_dir)
    with again.engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert conn.execute(text("SELECT count(*) FROM artifacts")).scalar() == 1
    again.close()


def test_models_match_the_migrations(workspace: Workspace) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with workspace.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_folder_whose_parent_is_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace.open(tmp_path / "missing" / "ws")


def test_non_workspace_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not an Unprompt workspace"):
        Workspace.open(tmp_path)


def test_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.open(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o500)
    try:
        with pytest.raises(WorkspaceError, match="not writable"):
            Workspace.open(target)
    finally:
        target.chmod(0o700)


def test_read_only_folder_is_refused_even_as_root(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == target
                        else real_access(p, mode))
    with pytest.raises(WorkspaceError, match="not writable"):
        Workspace.open(target)


def test_environment_variable_chooses_the_folder(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPROMPT_WORKSPACE", str(tmp_path / "from-env"))
    ws = Workspace.open()
    assert ws.root == tmp_path / "from-env"
    ws.close()


@pytest.mark.sqlite_only
def test_db_url_points_the_registry_elsewhere(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPROMPT_DB_URL", f"sqlite:///{tmp_path / 'team.db'}")
    ws = Workspace.open(tmp_path / "ws")
    ws.close()
    assert (tmp_path / "team.db").exists()
    assert not (tmp_path / "ws" / "registry.db").exists()


def test_a_registry_at_a_newer_migration_is_refused_naming_both(workspace_dir: Path) -> None:
    Workspace.open(workspace_dir).close()
    raw_registry.execute(workspace_dir, "UPDATE alembic_version SET version_num = 'f00dfeed0001'")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with pytest.raises(WorkspaceError) as refused:
        Workspace.open(workspace_dir)
    message = str(refused.value)
    assert "f00dfeed0001" in message and head in message and "newer version" in message
    assert raw_registry.rows(workspace_dir, "SELECT version_num FROM alembic_version") == [
        ("f00dfeed0001",)]  # nothing was migrated


@pytest.mark.sqlite_only  # about the migration scripts: no second run needed
def test_every_revision_id_fits_postgresqls_version_column() -> None:
    """alembic_version.version_num is VARCHAR(32): SQLite does not enforce it, PostgreSQL
    refuses the migration (a new migration's id must stay short)."""
    script = ScriptDirectory.from_config(alembic_config())
    assert all(len(revision.revision) <= 32 for revision in script.walk_revisions())


@pytest.mark.sqlite_only  # a server that is not there: no PostgreSQL server needed
def test_an_unreachable_database_is_named_and_nothing_is_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("UNPROMPT_DB_URL", f"postgresql://ann:secret@127.0.0.1:{port}/team")
    with pytest.raises(WorkspaceError) as refused:
        Workspace.open(tmp_path / "ws")
    message = str(refused.value)
    assert message.startswith("cannot connect to the registry database postgresql+psycopg://"
                              f"ann:***@127.0.0.1:{port}/team: ")
    assert "\n" not in message and "secret" not in message
    assert not (tmp_path / "ws").exists()


@pytest.mark.sqlite_only  # no PostgreSQL server needed
def test_a_url_of_a_driver_that_is_not_shipped_is_one_sentence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPROMPT_DB_URL", "oracle+cx_oracle://ann@db/team")
    with pytest.raises(WorkspaceError, match="not a database URL this version can open"):
        Workspace.open(tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed
