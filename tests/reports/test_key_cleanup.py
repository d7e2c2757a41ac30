"""A signing key generated for a command that then fails is removed again (issue 14.12)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reports import keys
from reports.key_admin import command_signing_identity
from storage import auditlog
from storage.errors import UnpromptError
from storage.models import AuditLogEntry
from storage.workspace import Workspace

PASS = b"correct horse battery staple"


def actions(ws: Workspace) -> list[str]:
    with ws.sessions() as session:
        assert auditlog.verify(session).valid
        return list(session.scalars(select(AuditLogEntry.action).order_by(AuditLogEntry.seq)))


def test_key_generated_by_a_failed_command_is_discarded(workspace: Workspace) -> None:
    with pytest.raises(UnpromptError, match="boom"), \
            command_signing_identity(workspace, PASS, "alice"):
        assert (workspace.keys_dir / keys.P12_NAME).exists()
        raise UnpromptError("boom")
    assert not (workspace.keys_dir / keys.P12_NAME).exists()
    assert not (workspace.keys_dir / keys.CRT_NAME).exists()
    assert keys.trusted_certificates(workspace.keys_dir) == []
    assert actions(workspace) == ["keys.generated", "keys.discarded"]


def test_existing_key_survives_a_failed_command(workspace: Workspace) -> None:
    with command_signing_identity(workspace, PASS, "alice") as first:
        pass
    with pytest.raises(UnpromptError), command_signing_identity(workspace, PASS, "alice"):
        raise UnpromptError("boom")
    assert keys.load_signing_key(workspace.keys_dir, PASS).fingerprint == first.fingerprint
    assert actions(workspace) == ["keys.generated"]
