"""Residual-scan proofs: a large artifact is searched once, and skipped only while that
search still holds (docs/design.md section 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.residual_scan import scan_workspace
from storage import residue, scan_proofs
from storage.pattern_search import WordFinder, search_file
from storage.scan_proofs import pattern_hash, prove, proven_files

pytestmark = pytest.mark.sqlite_only  # files and hashes only: the registry plays no part


@pytest.fixture(autouse=True)
def _settled_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_proofs, "SETTLE_S", 0.05)  # this file system's tick is finer


def test_the_word_search_finds_what_a_byte_search_finds(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(residue, "CHUNK", 1000)
    patterns = [os.urandom(n) for n in (16, 17, 100, 768, 3000)] + [b"\0" * 64]
    body = os.urandom(5000)
    for shift, i in enumerate((0, 2, 3, 5)):  # every alignment, one across a chunk boundary
        body += os.urandom(shift + 1) + patterns[i]
    (tmp_path / "f").write_bytes(body + os.urandom(7) + patterns[1][:-1])
    assert search_file(tmp_path / "f", patterns) == {0, 2, 3, 5}
    assert WordFinder(patterns)(body, set()) == {i for i, p in enumerate(patterns) if p in body}


def _artifact(root: Path, data: bytes) -> str:
    (root / "artifacts").mkdir(exist_ok=True)
    sha = "a" * 64
    (root / "artifacts" / sha).write_bytes(data)
    return sha


def test_a_proven_artifact_is_not_read_again(tmp_path: Path) -> None:
    sha = _artifact(tmp_path, os.urandom(20000))
    gone = os.urandom(768)
    prove(tmp_path, sha, {pattern_hash(gone): gone})
    report = scan_workspace(tmp_path, [gone])
    assert report["clean"] and report["files_proven"] == 1 and report["bytes_proven"] == 20000
    assert report["bytes_scanned"] < 20000  # only the proof itself was read
    other = os.urandom(768)  # a tensor the proof never searched for: the file is read
    assert scan_workspace(tmp_path, [other])["files_proven"] == 0


def test_a_pattern_found_by_the_proof_is_found_by_every_scan(tmp_path: Path) -> None:
    gone = os.urandom(768)
    sha = _artifact(tmp_path, os.urandom(5000) + gone + os.urandom(5000))
    proof = prove(tmp_path, sha, {pattern_hash(gone): gone})
    assert proof["present"] == [pattern_hash(gone)]
    report = scan_workspace(tmp_path, [gone])
    assert not report["clean"] and report["hits"] == [{"file": f"artifacts/{sha}",
                                                       "pattern": 0}]


def test_a_file_changed_after_its_proof_is_read_again(tmp_path: Path) -> None:
    gone = os.urandom(768)
    sha = _artifact(tmp_path, os.urandom(20000))
    prove(tmp_path, sha, {pattern_hash(gone): gone})
    path = tmp_path / "artifacts" / sha
    data = bytearray(path.read_bytes())
    data[100:100 + len(gone)] = gone  # same size, same inode: the ctime still moves
    with open(path, "r+b") as handle:
        handle.write(data)
    assert proven_files(tmp_path, {pattern_hash(gone)}) == {}
    assert not scan_workspace(tmp_path, [gone])["clean"]
