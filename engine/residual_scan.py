"""Residual scan (docs/design.md section 4, step 4): no
workspace file may hold removed tensor bytes.

The scan reads every regular file under the workspace (registry, WAL, artifacts, keys,
certificates) in overlapping chunks and looks for each pattern, so a pattern that
straddles a chunk boundary is still found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHUNK = 4 * 1024 * 1024
MIN_PATTERN = 16  # shorter byte strings occur by chance; refuse them rather than mislead


def scan_workspace(root: Path, patterns: list[bytes]) -> dict[str, Any]:
    """Return ``clean`` plus what was scanned and, if any, which file holds which pattern."""
    patterns = [p for p in patterns if p]
    if any(len(p) < MIN_PATTERN for p in patterns):
        raise ValueError(f"residual-scan patterns must be at least {MIN_PATTERN} bytes")
    files, total, hits = 0, 0, []
    for path in _files(root):
        files += 1
        size, found = _scan_file(path, patterns)
        total += size
        hits += [{"file": str(path.relative_to(root)), "pattern": i} for i in found]
    return {"clean": not hits, "files_scanned": files, "bytes_scanned": total,
            "patterns": len(patterns), "hits": hits}


def _files(root: Path):  # noqa: ANN202 - generator of paths
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _scan_file(path: Path, patterns: list[bytes]) -> tuple[int, set[int]]:
    overlap = max((len(p) for p in patterns), default=1) - 1
    found: set[int] = set()
    size, tail = 0, b""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                size += len(chunk)
                window = tail + chunk
                found |= {i for i, p in enumerate(patterns) if i not in found and p in window}
                tail = window[-overlap:] if overlap else b""
    except OSError:
        return size, found  # a file that vanished mid-scan (e.g. a WAL checkpoint) holds nothing
    return size, found
