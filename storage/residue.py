"""Residual-scan fingerprints: find removed tensor bytes without keeping them (docs/design.md 4).

A forget reads the bytes of every tensor it removes before the purge, and its scan
looks for them. If the process dies after the purge, those bytes are gone, so the
forget keeps *fingerprints* with the new version instead: per pattern its length, the
SHA-256 of the whole pattern, and a 32-bit hash of one 8-byte window inside it (the
anchor). The fingerprint scan hashes every 8-byte window of every workspace file,
and confirms each anchor hit by the SHA-256 of the whole span. Neither hash gives the
bytes back: the anchor hash keeps 32 of 64 bits, the SHA-256 is one-way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHUNK = 4 * 1024 * 1024
WINDOW = 8
MIN_PATTERN = 16  # shorter byte strings occur by chance; refuse them rather than mislead
_MIX = 0x9E3779B97F4A7C15  # odd: multiplying by it mixes every input bit into the top half


def anchor_hash(window: bytes) -> int:
    """The 32-bit hash of one 8-byte window (the top half of a 64-bit multiply)."""
    value = int.from_bytes(window, "little")
    return ((value * _MIX) % (1 << 64)) >> 32


def fingerprint(pattern: bytes) -> dict[str, Any]:
    """What the scan needs to find ``pattern`` later; no byte of it is kept."""
    if len(pattern) < MIN_PATTERN:
        raise ValueError(f"residual-scan patterns must be at least {MIN_PATTERN} bytes")
    offset = _anchor_offset(pattern)
    return {"length": len(pattern), "offset": offset,
            "anchor": anchor_hash(pattern[offset:offset + WINDOW]),
            "sha256": hashlib.sha256(pattern).hexdigest()}


def _anchor_offset(pattern: bytes) -> int:
    """The window with the most distinct bytes: constant runs would match everywhere."""
    last = min(len(pattern) - WINDOW, 512)
    return max(range(last + 1), key=lambda i: (len(set(pattern[i:i + WINDOW])), -i))


def scan_fingerprints(root: Path, prints: list[dict[str, Any]],
                      proven: dict[Path, int] | None = None) -> dict[str, Any]:
    """The residual scan's report (``engine.residual_scan``) from fingerprints alone."""
    overlap = max((p["length"] for p in prints), default=1) - 1
    return scan_tree(root, len(prints), overlap,
                     lambda window, _found: _matches(window, prints), proven)


Matcher = Callable[[bytes, set[int]], set[int]]


def scan_tree(root: Path, patterns: int, overlap: int, match: Matcher,
              proven: dict[Path, int] | None = None) -> dict[str, Any]:
    """Stream every regular file under ``root`` in chunks that overlap by ``overlap`` bytes
    (so a pattern straddling a boundary is still seen); ``match(window, found)`` returns the
    indices of the patterns it finds. ``proven`` (``{file: size}``) are files a proof shows
    free of every pattern (``storage.scan_proofs``): counted, not read. Returns the
    residual-scan report."""
    proven, skipped = proven or {}, []
    files, total, hits = 0, 0, []
    for path in workspace_files(root):
        if path in proven:
            skipped.append(proven[path])
            continue
        files += 1
        size, found = scan_file(path, overlap, match)
        total += size
        hits += [{"file": str(path.relative_to(root)), "pattern": i} for i in sorted(found)]
    return {"clean": not hits, "files_scanned": files, "bytes_scanned": total,
            "files_proven": len(skipped), "bytes_proven": sum(skipped),
            "patterns": patterns, "hits": hits}


def workspace_files(root: Path) -> Iterator[Path]:
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def scan_file(path: Path, overlap: int, match: Matcher) -> tuple[int, set[int]]:
    """``(bytes read, indices found)`` of one file, read in overlapping chunks."""
    found: set[int] = set()
    size, tail = 0, b""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                size += len(chunk)
                window = tail + chunk
                found |= match(window, found)
                tail = window[-overlap:] if overlap else b""
    except OSError:
        return size, found  # a file that vanished mid-scan (e.g. a WAL checkpoint) holds nothing
    return size, found


def _matches(buf: bytes, prints: list[dict[str, Any]]) -> set[int]:
    """Indices of the fingerprints whose pattern occurs somewhere in ``buf``."""
    import numpy as np

    if not prints or len(buf) < WINDOW:
        return set()
    anchors = np.array(sorted({p["anchor"] for p in prints}), dtype=np.uint64)
    data = np.frombuffer(buf, dtype=np.uint8)
    found: set[int] = set()
    for start in range(WINDOW):
        count = (len(data) - start) // WINDOW
        words = data[start:start + count * WINDOW].view("<u8")
        hashed = (words * np.uint64(_MIX)) >> np.uint64(32)
        slot = np.minimum(np.searchsorted(anchors, hashed), len(anchors) - 1)
        for index in np.nonzero(anchors[slot] == hashed)[0]:
            found |= _confirm(buf, start + int(index) * WINDOW, int(hashed[index]), prints)
    return found


def _confirm(buf: bytes, at: int, anchor: int, prints: list[dict[str, Any]]) -> set[int]:
    """Fingerprints whose anchor sits at ``at`` and whose whole span hashes right."""
    out = set()
    for i, p in enumerate(prints):
        begin = at - p["offset"]
        if p["anchor"] != anchor or begin < 0 or begin + p["length"] > len(buf):
            continue
        if hashlib.sha256(buf[begin:begin + p["length"]]).hexdigest() == p["sha256"]:
            out.add(i)
    return out
