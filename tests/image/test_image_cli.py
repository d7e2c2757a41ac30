"""The image commands through the CLI: JSON contracts and clean errors.

Through the CLI's ``main`` in-process; a bad class once more in a real ``main.py`` process
(what a shell sees from a command that loads torch and the model)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_clean_error, call_cli, call_json, run_cli


def test_forget_json_contract(ws_root: Path) -> None:
    result = call_json("--workspace", str(ws_root), "forget", "demo", "--class", "1",
                       "--class", "8")
    for key in ("version", "latency_ms", "accuracy_before", "accuracy_after", "purged",
                "residual_scan", "erasure_kind"):
        assert key in result
    assert result["residual_scan"]["clean"] is True and len(result["purged"]) == 2
    assert set(result["accuracy_after"]["forgotten"]) == {"1", "8"}
    assert all(v == 0.0 for v in result["accuracy_after"]["forgotten"].values())
    assert "retained" in result["accuracy_before"] and "per_class" in result["accuracy_before"]
    classes = call_json("--workspace", str(ws_root), "classes", "demo")["classes"]
    assert [c["index"] for c in classes if c["status"] == "forgotten"] == [1, 8]
    evaluation = call_json("--workspace", str(ws_root), "evaluate", "demo")
    assert evaluation["version"] == 2 and "1" not in evaluation["per_class"]


def test_forget_errors_are_one_line(ws_root: Path) -> None:
    assert_clean_error(run_cli("--workspace", str(ws_root), "forget", "demo", "--class", "x"),
                       "no class")
    assert_clean_error(call_cli("--workspace", str(ws_root), "forget", "ghost", "--class", "1"),
                       "no model")


def test_train_with_bad_data_writes_nothing(tmp_path: Path) -> None:
    ws = str(tmp_path / "W")
    assert_clean_error(call_cli("--workspace", ws, "train", "--dataset", "imagefolder",
                                "--data-dir", str(tmp_path / "missing"), "--name", "x"))
    assert_clean_error(call_cli("--workspace", ws, "train", "--dataset", "fashion-mnist",
                                "--data-dir", str(tmp_path), "--name", "x"))
    assert_clean_error(call_cli("--workspace", ws, "train", "--name", "x", "--mode", "isolated"),
                       "isolated mode needs")
    assert_clean_error(call_cli("--workspace", ws, "train", "--name", "x", "--epochs", "0"))
    assert call_json("--workspace", ws, "models") == {"models": []}


def test_train_refuses_a_taken_name(ws_root: Path) -> None:
    assert_clean_error(call_cli("--workspace", str(ws_root), "train", "--name", "demo"),
                       "already exists")
    assert json.loads(call_cli("--workspace", str(ws_root), "models", "--json").stdout)
