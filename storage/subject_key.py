"""The workspace's subject key: the secret that keys data-subject hashes (HMAC-SHA256).

It lives in ``<workspace>/keys/`` (mode 0600), never in the registry, so that a copy of
``registry.db`` alone does not let anyone confirm a guessed reference. It is created on
first use by linking a fully written temporary file into place, so two processes that
race both end up with the one key that won.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from storage.errors import IntegrityError, WorkspaceError

FILENAME = "subject-hmac.key"
KEY_BYTES = 32


def subject_key(keys_dir: Path) -> bytes:
    """The key in ``keys_dir``, created (0600, atomically) if there is none yet."""
    path = keys_dir / FILENAME
    if not path.exists():
        _create(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise WorkspaceError(f"cannot read the subject key {path}: {exc.strerror}") from exc
    if len(key) != KEY_BYTES:
        raise IntegrityError(f"the subject key {path} is damaged ({len(key)} bytes, "
                             f"expected {KEY_BYTES}); restore it from a backup")
    return key


def _create(path: Path) -> None:
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
    except OSError as exc:
        raise WorkspaceError(f"cannot create the subject key {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def keyed_hash(subject: str, key: bytes) -> str:
    """HMAC-SHA256 of the reference: equal references give equal hashes in one workspace."""
    return hmac.new(key, subject.strip().encode("utf-8"), hashlib.sha256).hexdigest()
