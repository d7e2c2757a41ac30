"""Residual-scan proofs for large stored artifacts, made once (docs/design.md section 16).

The residual scan shows that no workspace file holds a removed tensor's bytes. Reading
a ViT-B backbone (330 MB) for that on every forget makes a forget cost more the larger
the backbone, although the backbone never changes: an artifact is content-addressed
and written once (a new file renamed into place), so searching it for a given tensor
gives the same answer every time. A proof is that search made once, when the artifact
or the class is stored: ``scan-proofs/<sha>.json`` keeps the file's identity (size,
inode, mtime, ctime) and the SHA-256 of every class tensor it was searched for, split
into ``absent`` and ``present``. A later scan skips a file only when its identity is
unchanged (a program can set a file's mtime back, not its ctime) and every tensor that
scan seeks is proven ``absent`` there; any other file is read as before. A proof holds
hashes only, never a tensor's bytes. A file's times have a granularity (a clock tick,
a second on some file systems): a change in the same tick as the write would keep the
ctime, so a proof is only sealed once ``SETTLE_S`` has passed since the file's ctime.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from storage.artifacts import atomic_write

PROOFS = "scan-proofs"
LARGE = 1 << 20  # smaller files cost every scan little: a proof would save nothing
SETTLE_S = 1.0  # longer than the time granularity of the usual file systems


def identity(path: Path) -> list[int]:
    """What changes whenever the file's bytes do: size, inode, mtime and ctime."""
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def artifact_path(root: Path, sha: str) -> Path:
    return root / "artifacts" / sha


def proof_path(root: Path, sha: str) -> Path:
    return root / PROOFS / f"{sha}.json"


def read_proof(root: Path, sha: str) -> dict[str, Any] | None:
    try:
        proof = json.loads(proof_path(root, sha).read_text())
    except (OSError, ValueError):
        return None
    return proof if isinstance(proof, dict) and proof.get("artifact") == sha else None


def prove(root: Path, sha: str, patterns: dict[str, bytes]) -> dict[str, Any] | None:
    """Search artifact ``sha`` for every pattern (``{sha256: bytes}``) its proof lacks and
    keep the answer; ``None`` when the file is gone or changed while it was read."""
    from storage.pattern_search import search_file  # numpy: only where a proof is made

    path = artifact_path(root, sha)
    try:
        before = identity(path)
    except OSError:
        return None
    proof = read_proof(root, sha)
    if proof is None or proof.get("identity") != before:
        proof = {"artifact": sha, "identity": before, "absent": [], "present": []}
    known = set(proof["absent"]) | set(proof["present"])
    todo = [key for key in patterns if key not in known]
    if not todo:
        return proof
    found = search_file(path, [patterns[key] for key in todo])
    if not _unchanged(path, before):
        return None
    proof["absent"] += [key for i, key in enumerate(todo) if i not in found]
    proof["present"] += [key for i, key in enumerate(todo) if i in found]
    (root / PROOFS).mkdir(exist_ok=True)
    atomic_write(proof_path(root, sha), json.dumps(proof).encode())
    return proof


def _unchanged(path: Path, before: list[int]) -> bool:
    """The file still has ``before``'s identity, checked once a change could no longer
    hide in the tick of its last write (the module's note)."""
    time.sleep(max(0.0, before[3] / 1e9 + SETTLE_S - time.time()))
    try:
        return identity(path) == before
    except OSError:
        return False


def drop_proofs(root: Path, keep: set[str]) -> None:
    """Remove the proofs of artifacts that are no longer stored."""
    folder = root / PROOFS
    if folder.is_dir():
        for path in folder.glob("*.json"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)


def proven_files(root: Path, pattern_hashes: set[str]) -> dict[Path, int]:
    """``{file: size}`` a scan for these patterns (by SHA-256) need not read: each is
    unchanged since its proof, which shows every one of them absent there."""
    folder = root / PROOFS
    if not pattern_hashes or not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.json")):
        proof = read_proof(root, path.stem)
        if proof is None or not pattern_hashes <= set(proof["absent"]):
            continue
        target = artifact_path(root, path.stem)
        try:
            if identity(target) == proof["identity"]:
                out[target] = proof["identity"][0]
        except OSError:
            continue
    return out


def pattern_hash(pattern: bytes) -> str:
    return hashlib.sha256(pattern).hexdigest()


def coverage_text(scan: dict[str, Any]) -> str:
    """What a residual-scan report covered, in words: the files it read and the stored
    artifacts a proof covered."""
    read = f"{scan.get('files_scanned', 'every')} files"
    if "bytes_scanned" in scan:
        read += f" ({scan['bytes_scanned'] / 1e6:.1f} MB) read"
    if not scan.get("files_proven"):
        return read
    return (f"{read}, {scan['files_proven']} stored artifact(s) "
            f"({scan['bytes_proven'] / 1e6:.1f} MB) searched when stored, unchanged since")
