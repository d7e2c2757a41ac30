"""Destroying the weights folders of purged fine-tuned versions (docs/design.md section 18).

A fine-tuned language model keeps each version's weights in a folder of the workspace
(``language-models/NAME/vK``), not as artifacts. A retrain marks every earlier version
``purged`` in its transaction; this module then overwrites and deletes their folders.
It is idempotent: ``Workspace.open`` calls it too, so that a retrain killed between its
commit and the end of the purge leaves no earlier weights behind. The weights of a held
retrain an operator rejected are destroyed the same way, right after the decision (or on
the next open, when that was killed first).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import AuditRun, Model, ModelVersion


def destroy_folder(root: Path, folder: str | Path) -> bool:
    """Overwrite every file of ``folder`` (inside the workspace ``root``) and remove it;
    False when it is gone already. A folder outside the workspace is never touched."""
    path = Path(folder)
    if not path.is_dir() or not path.resolve().is_relative_to(root.resolve()):
        return False
    for current, _dirs, names in os.walk(path):
        for name in names:
            _overwrite(Path(current) / name)
    shutil.rmtree(path)
    return True


def _overwrite(path: Path) -> None:
    if path.is_symlink() or not path.is_file():
        return
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        remaining = size
        while remaining:
            step = min(remaining, 1 << 22)
            handle.write(os.urandom(step))
            remaining -= step
        handle.flush()
        os.fsync(handle.fileno())


def purged_folders(session: Session) -> list[str]:
    """Weights folders of purged versions of language models (those still to destroy)."""
    rows = session.scalars(select(ModelVersion).join(Model).where(
        Model.kind == "llm", ModelVersion.status == "purged"))
    return [f for v in rows if (f := (v.metrics or {}).get("folder"))]


def rejected_runs(session: Session) -> list[AuditRun]:
    """Held fine-tune retrains an operator rejected whose weights folder is not destroyed
    yet: a rejected retrain's weights are never promoted (docs/design.md section 18.1)."""
    runs = session.scalars(select(AuditRun).where(AuditRun.kind == "reference"))
    return [r for r in runs if (r.config or {}).get("finetune")
            and ((r.metrics or {}).get("retrain") or {}).get("status") == "rejected"
            and r.metrics.get("folder") and not r.metrics.get("folder_destroyed")]


def destroy_rejected(root: Path, sessions: sessionmaker[Session]) -> list[str]:
    """Destroy the folders of rejected retrains and note it on their runs (so that a later
    folder of the same name is never taken for theirs); returns the folders."""
    with sessions.begin() as session:
        runs = rejected_runs(session)
        for run in runs:
            destroy_folder(root, run.metrics["folder"])
            run.metrics = {**run.metrics, "folder_destroyed": True}
        return [run.metrics["folder"] for run in runs]


def resume_weight_purges(root: Path, sessions: sessionmaker[Session]) -> list[str]:
    """Destroy what a retrain killed after its commit, or a rejection killed before its
    cleanup, left; returns the folders."""
    with sessions() as session:
        folders = purged_folders(session)
    return [f for f in folders if destroy_folder(root, f)] + destroy_rejected(root, sessions)
