"""Residual scan (docs/design.md section 4, step 4): no
workspace file may hold removed tensor bytes.

The scan reads every regular file under the workspace (registry, WAL, artifacts, keys,
certificates) in overlapping chunks and looks for each pattern, so a pattern that
straddles a chunk boundary is still found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.residue import MIN_PATTERN, scan_tree

__all__ = ["MIN_PATTERN", "scan_workspace"]


def scan_workspace(root: Path, patterns: list[bytes]) -> dict[str, Any]:
    """Return ``clean`` plus what was scanned and, if any, which file holds which pattern."""
    patterns = [p for p in patterns if p]
    if any(len(p) < MIN_PATTERN for p in patterns):
        raise ValueError(f"residual-scan patterns must be at least {MIN_PATTERN} bytes")
    overlap = max((len(p) for p in patterns), default=1) - 1
    return scan_tree(root, len(patterns), overlap, lambda window, found: {
        i for i, p in enumerate(patterns) if i not in found and p in window})
