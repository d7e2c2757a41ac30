"""bench/audit.py's own set-up (the benchmark itself is not part of the test run): each
forgotten class gets a fresh copy of the pretrained workspace, since `frozen` models
trained alike hold the same class bytes and a forget refuses to purge bytes another model
serves (`--forget 7 9 5` failed on its second class); the thread count leaves a core free."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.audit as bench


def test_each_trial_gets_a_fresh_copy_of_the_pretrained_workspace(tmp_path: Path) -> None:
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    (pretrained / "registry.db").write_bytes(b"backbone only")
    first = bench.trial_workspace(pretrained, tmp_path, 7)
    (first / "registry.db").write_bytes(b"fm-frozen-7 trained and forgotten")
    second = bench.trial_workspace(pretrained, tmp_path, 9)
    assert first != second and (second / "registry.db").read_bytes() == b"backbone only"
    assert bench.trial_workspace(pretrained, tmp_path, 7).joinpath("registry.db"
                                                                   ).read_bytes() == \
        b"backbone only"


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (4, 3), (64, 8), (None, 1)])
def test_the_default_thread_count_leaves_a_core_free(monkeypatch: pytest.MonkeyPatch,
                                                     cores: int | None, threads: int) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: cores)
    assert bench.default_threads() == threads
