"""Content-addressed artifacts: verified reads, atomic writes, purge with tombstones."""

from __future__ import annotations

import pytest

from storage.errors import IntegrityError, NotFoundError
from storage.models import Artifact
from storage.workspace import Workspace


def test_round_trip_and_idempotent_put(workspace: Workspace) -> None:
    sha = workspace.artifacts.put(b"prompt bytes", kind="class")
    assert workspace.artifacts.put(b"prompt bytes") == sha
    assert workspace.artifacts.get(sha) == b"prompt bytes"
    assert not list(workspace.artifacts.root.glob(".*.tmp"))


def test_changed_bytes_are_rejected(workspace: Workspace) -> None:
    sha = workspace.artifacts.put(b"0123456789")
    path = workspace.artifacts.path(sha)
    data = bytearray(path.read_bytes())
    data[4] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt"):
        workspace.artifacts.get(sha)


def test_missing_file_is_reported(workspace: Workspace) -> None:
    sha = workspace.artifacts.put(b"abc")
    workspace.artifacts.path(sha).unlink()
    with pytest.raises(NotFoundError):
        workspace.artifacts.get(sha)


def test_purge_deletes_the_file_and_keeps_a_tombstone(workspace: Workspace) -> None:
    sha = workspace.artifacts.put(b"secret prompt")
    with workspace.sessions.begin() as session:
        workspace.artifacts.mark_for_purge(session, [sha])
    assert workspace.artifacts.purge_marked() == [sha]
    assert not workspace.artifacts.path(sha).exists()
    with workspace.sessions() as session:
        row = session.get(Artifact, sha)
        assert row.status == "purged" and row.purged_at is not None


def test_marked_purge_resumes_when_the_workspace_reopens(workspace_dir) -> None:  # noqa: ANN001
    ws = Workspace.open(workspace_dir)
    sha = ws.artifacts.put(b"interrupted")
    with ws.sessions.begin() as session:
        ws.artifacts.mark_for_purge(session, [sha])
    ws.close()  # "crash" before the purge ran
    again = Workspace.open(workspace_dir)
    assert not again.artifacts.path(sha).exists()
    with again.sessions() as session:
        assert session.get(Artifact, sha).status == "purged"
    again.close()


def test_a_purge_another_process_finished_first_is_not_an_error(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes resume the same purge (a colleague opens the shared workspace while a
    forget purges): the file vanishes between the stat and the overwrite."""
    import builtins

    import storage.artifacts as artifacts

    sha = workspace.artifacts.put(b"raced")
    with workspace.sessions.begin() as session:
        workspace.artifacts.mark_for_purge(session, [sha])
    real_open = builtins.open

    def open_after_the_other_process(path, *args, **kwargs):  # noqa: ANN001, ANN202
        if str(path) == str(workspace.artifacts.path(sha)):
            workspace.artifacts.path(sha).unlink(missing_ok=True)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(artifacts, "open", open_after_the_other_process, raising=False)
    assert workspace.artifacts.purge_marked() == [sha]
    with workspace.sessions() as session:
        assert session.get(Artifact, sha).status == "purged"
