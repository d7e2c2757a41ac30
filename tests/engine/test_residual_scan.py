"""The residual scan finds removed tensor bytes anywhere in the workspace, even across chunks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.residual_scan import scan_workspace
from storage import residue


def test_clean_workspace(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(os.urandom(1000))
    report = scan_workspace(tmp_path, [b"P" * 64])
    assert report["clean"] and report["files_scanned"] == 1 and report["bytes_scanned"] == 1000


def test_finds_a_pattern_in_a_nested_file(tmp_path: Path) -> None:
    pattern = os.urandom(768)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "x").write_bytes(os.urandom(50) + pattern + os.urandom(50))
    report = scan_workspace(tmp_path, [os.urandom(768), pattern])
    assert not report["clean"]
    assert report["hits"] == [{"file": "artifacts/x", "pattern": 1}]


def test_finds_a_pattern_across_a_chunk_boundary(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(residue, "CHUNK", 1000)  # the walker both scans share
    pattern = os.urandom(256)
    (tmp_path / "f").write_bytes(os.urandom(900) + pattern + os.urandom(900))
    assert not scan_workspace(tmp_path, [pattern])["clean"]


def test_refuses_patterns_too_short_to_mean_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        scan_workspace(tmp_path, [b"abc"])
