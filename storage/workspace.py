"""The workspace folder (docs/design.md section 2): registry, artifacts, keys, certificates.

``Workspace.open`` resolves the folder (``--workspace``, ``UNPROMPT_WORKSPACE``, else the
platform user-data folder), refuses a folder that is unusable, applies pending
migrations and resumes interrupted purges and the residual scans that a crash cut off
(``storage.post_forget``). With ``create=False`` (read-only commands) it opens only an
existing workspace and creates nothing at a mistyped path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from storage.artifacts import ArtifactStore
from storage.db import (
    Sessions,
    check_reachable,
    make_engine,
    make_sessionmaker,
    registry_name,
    upgrade_to_head,
)
from storage.errors import WorkspaceError
from storage.post_forget import resume_checks
from storage.weights_purge import resume_weight_purges

REGISTRY = "registry.db"
MARKER_DIRS = ("artifacts", "keys", "certificates")


def default_workspace() -> Path:
    env = os.environ.get("UNPROMPT_WORKSPACE")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("unprompt", appauthor=False))


def _check_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"workspace {root} is a file, not a folder")
    if not root.exists():
        if not root.parent.exists():
            raise WorkspaceError(f"cannot create workspace {root}: {root.parent} does not exist")
        return
    if not os.access(root, os.W_OK | os.X_OK):
        raise WorkspaceError(f"workspace {root} is not writable")
    entries = {p.name for p in root.iterdir()}
    if entries and not entries & {REGISTRY, "artifacts"}:
        raise WorkspaceError(f"{root} is not an Unprompt workspace (no {REGISTRY}; "
                             "choose an empty or new folder)")


def _check_exists(root: Path) -> None:
    """For read-only use: the folder must already be a workspace (nothing is created)."""
    registry = os.environ.get("UNPROMPT_DB_URL") or (root / REGISTRY).is_file()
    if not root.is_dir() or not registry or not (root / "artifacts").is_dir():
        raise WorkspaceError(f"there is no Unprompt workspace at {root}; check the path "
                             "(nothing was created there)")


def _open_registry(root: Path, url: str) -> Engine:
    """The migrated registry; a server that cannot be reached is named before anything is
    created in the folder (docs/design.md section 12)."""
    try:
        engine = make_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise WorkspaceError(f"UNPROMPT_DB_URL is not a database URL this version can open "
                             f"({_one_line(exc)}); use postgresql+psycopg://USER:PASSWORD@"
                             "HOST:PORT/DATABASE") from None
    try:
        check_reachable(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise WorkspaceError(f"cannot connect to the registry database "
                             f"{registry_name(engine)}: {_one_line(_cause(exc))}") from None
    try:
        root.mkdir(exist_ok=True)
        for name in MARKER_DIRS:
            (root / name).mkdir(exist_ok=True)
        upgrade_to_head(engine)
    except PermissionError as exc:
        raise WorkspaceError(f"workspace {root} is not writable: {exc.strerror}") from exc
    except OSError as exc:
        raise WorkspaceError(f"cannot open workspace {root}: {exc.strerror} "
                             f"({exc.filename})") from exc
    except CommandError as exc:
        raise WorkspaceError(f"the registry of {root} was written by a newer version of "
                             f"Unprompt, or is damaged ({exc}); open it with that version"
                             ) from exc
    except SQLAlchemyError as exc:
        cause = _cause(exc)
        raise WorkspaceError(f"cannot open the registry {registry_name(engine)}: "
                             f"{cause.__class__.__name__}: {_one_line(cause)}") from exc
    return engine


def _cause(exc: SQLAlchemyError) -> BaseException:
    return getattr(exc, "orig", None) or exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


@dataclass
class Workspace:
    root: Path
    engine: Engine
    sessions: Sessions
    artifacts: ArtifactStore

    @classmethod
    def open(cls, folder: str | Path | None = None, *, create: bool = True) -> Workspace:
        root = Path(folder).expanduser() if folder else default_workspace()
        root = root.absolute()
        if create or root.exists():
            _check_folder(root)
        if not create:
            _check_exists(root)
        url = os.environ.get("UNPROMPT_DB_URL") or f"sqlite:///{root / REGISTRY}"
        engine = _open_registry(root, url)
        sessions = make_sessionmaker(engine)
        workspace = cls(root, engine, sessions, ArtifactStore(root / "artifacts", sessions))
        workspace.artifacts.resume_purges()
        resume_weight_purges(root, sessions)
        resume_checks(root, sessions)
        return workspace

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def certificates_dir(self) -> Path:
        return self.root / "certificates"

    def close(self) -> None:
        self.engine.dispose()
