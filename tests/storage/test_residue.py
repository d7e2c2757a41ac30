"""Fingerprint scan: finds what the byte scan finds, from hashes alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.residual_scan import scan_workspace
from storage import residue
from storage.residue import fingerprint, scan_fingerprints

pytestmark = pytest.mark.sqlite_only  # files and hashes only: the registry plays no part


def test_fingerprints_find_the_same_hits_as_the_bytes(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(residue, "CHUNK", 1000)
    patterns = [os.urandom(n) for n in (16, 100, 768, 3000)]
    (tmp_path / "a").write_bytes(os.urandom(1001) + patterns[1] + os.urandom(3))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(os.urandom(995) + patterns[3] + os.urandom(9))
    (tmp_path / "c").write_bytes(bytes(5000))  # zeros: no anchor may match by accident
    prints = [fingerprint(p) for p in patterns]
    found = scan_fingerprints(tmp_path, prints)
    expected = scan_workspace(tmp_path, patterns)
    key = lambda hit: (hit["file"], hit["pattern"])  # noqa: E731
    assert sorted(found["hits"], key=key) == sorted(expected["hits"], key=key)
    assert found["files_scanned"] == 3 and not found["clean"]


def test_a_fingerprint_keeps_no_byte_of_its_pattern() -> None:
    pattern = os.urandom(64)
    text = json.dumps(fingerprint(pattern)).encode()
    assert all(pattern[i:i + 8] not in text and pattern[i:i + 8].hex().encode() not in text
               for i in range(0, 56, 8))


def test_refuses_patterns_too_short_to_mean_anything() -> None:
    with pytest.raises(ValueError):
        fingerprint(b"short")
