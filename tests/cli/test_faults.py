"""Errors that are not the product's own still end as one clean line and exit 1, and
read-only commands create nothing at a mistyped workspace path (issue 14.12).

Through the CLI's ``main`` in-process; the unreachable registry server once more in a real
``main.py`` process (what a shell sees when the database driver fails)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli.helpers import assert_clean_error, call_cli, run_cli

READ_ONLY = [("models",), ("classes", "demo"), ("log", "verify"), ("request", "list"),
             ("certificates",), ("keys", "show"), ("verify", "cert.pdf"),
             ("guard", "rule", "list"), ("evaluate", "demo")]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_command_creates_no_workspace(tmp_path: Path, command: tuple) -> None:
    typo = tmp_path / "wrokspace"
    result = call_cli(*command, "--workspace", str(typo))
    assert result.returncode == 1
    assert_clean_error(result, "no Unprompt workspace")
    assert not typo.exists()


def test_registry_from_a_newer_version_is_one_sentence(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert call_cli("settings", "--workspace", str(root)).returncode == 0
    with sqlite3.connect(root / "registry.db") as db:  # stamped by a future migration
        db.execute("UPDATE alembic_version SET version_num = 'f00dfeed0001'")
    result = call_cli("models", "--workspace", str(root))
    assert result.returncode == 1
    assert_clean_error(result, "newer version")


def test_an_unreachable_registry_server_is_one_sentence(tmp_path: Path) -> None:
    """A team registry that cannot be reached is named (its password hidden), and the
    command writes nothing: not even the workspace folder."""
    root = tmp_path / "ws"
    url = "postgresql+psycopg://ann:secret@127.0.0.1:1/team"  # nothing listens on port 1
    result = run_cli("settings", "--workspace", str(root), timeout=120,
                     env={"UNPROMPT_DB_URL": url})
    assert result.returncode == 1
    assert_clean_error(result, "cannot connect to the registry database "
                               "postgresql+psycopg://ann:***@127.0.0.1:1/team")
    assert "secret" not in result.stderr and not root.exists()


def test_file_error_in_keys_is_one_sentence(tmp_path: Path) -> None:
    """An OSError (here: keys/trusted is a file) exits 1 naming the path, not 3."""
    root = tmp_path / "ws"
    assert call_cli("settings", "--workspace", str(root)).returncode == 0
    (root / "keys" / "trusted").write_text("not a folder")
    pem = tmp_path / "partner.pem"
    pem.write_bytes(_certificate_pem())
    result = call_cli("keys", "trust", str(pem), "--workspace", str(root))
    assert result.returncode == 1
    assert_clean_error(result, str(root / "keys" / "trusted"))


def _certificate_pem() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.reports.sample import org_identity

    return org_identity(30).certificate.public_bytes(Encoding.PEM)
