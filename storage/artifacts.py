"""The content-addressed artifact store (docs/design.md section 2).

Files live at ``artifacts/<sha256>``. Writes are atomic (tmp + fsync + rename), every
read re-hashes the bytes, and a purge overwrites the file before deleting it and keeps
the Artifact row as a tombstone. A purge is first *marked* (status ``purging``) in the
same transaction as the version change that makes it necessary; ``resume_purges``
finishes marked purges after a crash.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.durable import fsync_path
from storage.errors import IntegrityError, NotFoundError
from storage.models import Artifact, utcnow


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old file or the new one.
    The temporary name is the process's and the thread's: two threads storing the same
    bytes at once (two fine-tunes of one corpus) must not share it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


class ArtifactStore:
    """Bytes by sha256, with the registry's Artifact rows as the index."""

    def __init__(self, root: Path, sessions: sessionmaker[Session]) -> None:
        self.root = root
        self.sessions = sessions
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha

    def put(self, data: bytes, kind: str = "") -> str:
        """Store ``data`` (idempotent) and return its sha256."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if not target.exists():
            atomic_write(target, data)
        with self.sessions.begin() as session:
            row = session.get(Artifact, sha)
            if row is None:
                session.add(Artifact(sha256=sha, size=len(data), kind=kind))
            elif row.status != "stored":
                row.status, row.purged_at = "stored", None
        return sha

    def get(self, sha: str) -> bytes:
        """Read and verify; a changed or missing file raises instead of returning bad bytes."""
        target = self.path(sha)
        if not target.exists():
            raise NotFoundError(f"artifact {sha[:12]} is missing from the workspace")
        data = target.read_bytes()
        if sha256_hex(data) != sha:
            raise IntegrityError(f"artifact {sha[:12]} is corrupt: its bytes no longer match "
                                 "its sha256")
        return data

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def mark_for_purge(self, session: Session, shas: list[str]) -> None:
        """Mark artifacts for purging inside the caller's transaction."""
        for sha in shas:
            row = session.get(Artifact, sha)
            if row is not None and row.status == "stored":
                row.status = "purging"

    def purge_marked(self, after_each: Callable[[str], None] | None = None) -> list[str]:
        """Overwrite and delete every artifact marked for purging; return their hashes."""
        with self.sessions() as session:
            pending = list(session.scalars(
                select(Artifact.sha256).where(Artifact.status == "purging")))
        for sha in pending:
            self._destroy(sha)
            if after_each is not None:
                after_each(sha)
        if pending:  # one commit for all tombstones; a crash before it just re-destroys
            with self.sessions.begin() as session:
                for sha in pending:
                    row = session.get(Artifact, sha)
                    row.status, row.purged_at = "purged", utcnow()
        return pending

    resume_purges = purge_marked

    def discard(self, shas: list[str], in_use: Callable[[Session], set[str]]) -> None:
        """Destroy artifacts a refused job stored and nothing points to (``in_use``); their
        rows stay as tombstones, like a purge's."""
        with self.sessions.begin() as session:
            used = in_use(session)
            doomed = [sha for sha in shas if sha not in used]
            for sha in doomed:
                self._destroy(sha)
                row = session.get(Artifact, sha)
                if row is not None:
                    row.status, row.purged_at = "purged", utcnow()

    def _destroy(self, sha: str) -> None:
        """Overwrite and remove one artifact file; one that another process (resuming the
        same purge) removed first counts as destroyed."""
        target = self.path(sha)
        try:
            size = target.stat().st_size
            with open(target, "r+b") as handle:
                handle.write(os.urandom(size))
                handle.flush()
                os.fsync(handle.fileno())
            target.unlink()
        except FileNotFoundError:
            return
        fsync_path(self.root)
