"""The CLI frame: --json output, the audit-log check, and clean errors for bad input.

Through the CLI's ``main`` in-process; two bad inputs once more in a real ``main.py``
process (the exit status and the one stderr line a shell sees)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from storage import auditlog
from storage.workspace import Workspace
from tests.cli.helpers import assert_clean_error, call_cli, call_json, run_cli


def test_new_workspace_has_no_models_and_a_valid_chain(tmp_path: Path) -> None:
    ws = str(tmp_path / "W")
    Workspace.open(ws).close()  # read-only commands create no workspace (tests/cli/test_faults)
    assert call_json("--workspace", ws, "models") == {"models": []}
    report = call_json("--workspace", ws, "log", "verify")
    assert report["valid"] is True and report["entries"] == 0


def test_json_option_is_accepted_before_the_command(tmp_path: Path) -> None:
    Workspace.open(tmp_path / "W").close()
    result = call_cli("--json", "--workspace", str(tmp_path / "W"), "models")
    assert result.returncode == 0 and json.loads(result.stdout) == {"models": []}


def test_one_changed_byte_in_the_log_is_named(tmp_path: Path) -> None:
    root = tmp_path / "W"
    ws = Workspace.open(root)
    for i in range(3):
        with ws.sessions.begin() as session:
            auditlog.append(session, "alice", "demo", {"step": i})
    ws.close()
    conn = sqlite3.connect(root / "registry.db")
    conn.execute("UPDATE audit_log SET actor = 'blice' WHERE seq = 2")
    conn.commit()
    conn.close()
    result = call_cli("--workspace", str(root), "log", "verify", "--json")
    assert result.returncode != 0
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["first_bad"] == 2


def test_unknown_command_is_one_line(tmp_path: Path) -> None:
    assert_clean_error(run_cli("--workspace", str(tmp_path), "frobnicate"), "invalid choice")


def test_unknown_model_is_one_line(tmp_path: Path) -> None:
    Workspace.open(tmp_path / "W").close()
    assert_clean_error(call_cli("--workspace", str(tmp_path / "W"), "classes", "nope"),
                       "no model named")


def test_missing_parent_folder_is_one_line(tmp_path: Path) -> None:
    assert_clean_error(run_cli("--workspace", str(tmp_path / "a" / "b"), "settings"),
                       "does not exist")


def test_non_workspace_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")
    assert_clean_error(call_cli("--workspace", str(tmp_path), "models"), "not an Unprompt")


def test_missing_argument_is_one_line(tmp_path: Path) -> None:
    assert_clean_error(call_cli("--workspace", str(tmp_path / "W"), "classes"), "required")
