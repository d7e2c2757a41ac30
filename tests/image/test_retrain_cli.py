"""`retrain N [--request R ...] [--accept | --reject --reason TEXT]` through the CLI's own
entry point, in-process (docs/design.md sections 8 and 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.app import main


def run(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["--workspace", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args,message", [
    (["retrain", "demo", "--reason", "x"], "error: --reason goes with --accept or --reject"),
    (["retrain", "demo", "--accept"], "error: --accept / --reject need --reason"),
    (["retrain", "demo", "--request", "abc"], "error: 'abc' is not a request id (a number)"),
    (["retrain", "nope"], "error: no model named 'nope'"),
    (["retrain", "demo", "--request", "9"], "error: request 9 is not about model 'demo'"),
])
def test_bad_input_is_one_line_and_exit_1(forgotten: Path, capsys: pytest.CaptureFixture,
                                          args: list[str], message: str) -> None:
    code, _out, err = run(forgotten, capsys, *args)
    assert code == 1 and err.startswith(message) and len(err.strip().splitlines()) == 1


def test_retrain_then_nothing_left_to_retrain(forgotten: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    code, out, _err = run(forgotten, capsys, "--json", "retrain", "demo", "--request", "2")
    result = json.loads(out)
    assert code == 0 and result["status"] == "promoted" and sorted(result["covered"]) == [1, 2]
    assert result["residual_scan"]["clean"] and result["erasure_kind"] == "exact"
    code, _out, err = run(forgotten, capsys, "retrain", "demo")
    assert code == 1 and "has no request waiting for a retrain" in err
