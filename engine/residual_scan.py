"""Residual scan (docs/design.md section 4, step 4): no
workspace file may hold removed tensor bytes.

The scan reads every regular file under the workspace (registry, WAL, artifacts, keys,
certificates) in overlapping chunks and looks for each pattern, so a pattern that
straddles a chunk boundary is still found. A large stored artifact that a proof shows
free of every pattern, and unchanged since, is not read again (``storage.scan_proofs``,
section 16): ``prove_stored_artifacts`` makes those proofs when a job stores artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.models import Artifact
from storage.residue import MIN_PATTERN, scan_tree
from storage.scan_proofs import LARGE, drop_proofs, pattern_hash, prove, proven_files
from storage.workspace import Workspace

__all__ = ["MIN_PATTERN", "prove_stored_artifacts", "scan_workspace"]


def scan_workspace(root: Path, patterns: list[bytes]) -> dict[str, Any]:
    """Return ``clean`` plus what was scanned and, if any, which file holds which pattern."""
    patterns = [p for p in patterns if p]
    if any(len(p) < MIN_PATTERN for p in patterns):
        raise ValueError(f"residual-scan patterns must be at least {MIN_PATTERN} bytes")
    overlap = max((len(p) for p in patterns), default=1) - 1
    proven = proven_files(root, {pattern_hash(p) for p in patterns})
    return scan_tree(root, len(patterns), overlap, lambda window, found: {
        i for i, p in enumerate(patterns) if i not in found and p in window}, proven)


def prove_stored_artifacts(ws: Workspace) -> None:
    """Search every large stored artifact, once, for the tensors of every stored class
    artifact it was not yet searched for, and keep the answers (``storage.scan_proofs``).
    Called after a job stores artifacts, so that a forget's scan need not read them."""
    with ws.sessions() as session:
        rows = [(a.sha256, a.kind, a.size) for a in
                session.query(Artifact).filter(Artifact.status == "stored")]
    large = [sha for sha, kind, size in rows if kind != "class" and size >= LARGE]
    drop_proofs(ws.root, set(large))
    if not large:
        return
    patterns = _class_tensors(ws, [sha for sha, kind, _ in rows if kind == "class"])
    for sha in large:
        try:
            prove(ws.root, sha, patterns)
        except OSError:
            continue  # no proof (a full disk, say): the forget's scan reads the file instead


def _class_tensors(ws: Workspace, shas: list[str]) -> dict[str, bytes]:
    """``{sha256: bytes}`` of every tensor of these class artifacts that a scan seeks."""
    from engine.serialize import class_tensor_fingerprints
    from storage.errors import UnpromptError

    out = {}
    for sha in shas:
        try:
            tensors = class_tensor_fingerprints(ws.artifacts.get(sha))
        except UnpromptError:
            continue  # a damaged or vanished artifact: a forget reads the workspace anyway
        out.update({pattern_hash(t): t for t in tensors if len(t) >= MIN_PATTERN})
    return out
