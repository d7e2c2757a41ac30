"""Forgetting classes: the five steps, refusals that change nothing, requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.forget import forget_job
from engine.jobs import run_job
from storage import auditlog
from storage import requests as reqs
from storage.errors import NotFoundError, RefusedError, UnpromptError
from storage.models import Artifact, ModelVersion
from storage.workspace import Workspace
from tests import approvals

pytestmark = pytest.mark.usefixtures("registry_backend")  # on SQLite and on PostgreSQL


def _forget(root: Path, classes: list[str], request=None) -> dict:  # noqa: ANN001
    return run_job(forget_job(root, model_name="demo", classes=classes, operator="alice",
                              request=request))


def _state(root: Path) -> tuple:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        versions = [(v.number, v.status) for v in session.query(ModelVersion)]
        entries = auditlog.verify(session).entries
        files = sorted(p.name for p in (root / "artifacts").iterdir())
    ws.close()
    return versions, entries, files


def test_forget_follows_the_five_steps(ws_root: Path) -> None:
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        v1 = session.query(ModelVersion).one()
        shared, victim = v1.shared_artifact, v1.class_artifacts["3"]
    ws.close()
    result = _forget(ws_root, ["3"])
    assert result["version"] == 2 and result["from_version"] == 1
    assert result["purged"] == [victim]
    assert result["residual_scan"]["clean"] and result["residual_scan"]["files_scanned"] > 3
    assert result["accuracy_after"]["forgotten"] == {"3": 0.0}
    assert "3" not in result["accuracy_after"]["per_class"] or \
        result["accuracy_after"]["per_class"]["3"] == 0.0
    assert 0.0 <= result["accuracy_after"]["retained"] <= 1.0
    assert result["latency_ms"] > 0
    assert not (ws_root / "artifacts" / victim).exists()
    assert (ws_root / "artifacts" / shared).exists()  # the backbone is never rewritten
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        assert session.get(Artifact, victim).status == "purged"  # tombstone
        v1, v2 = session.query(ModelVersion).order_by(ModelVersion.number).all()
        assert (v1.status, v2.status) == ("purged", "live")
        assert "3" not in v2.class_artifacts and v2.shared_artifact == shared
        assert auditlog.verify(session).valid
    ws.close()


def test_residual_scan_finds_a_leaked_copy(ws_root: Path) -> None:
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        victim = session.query(ModelVersion).one().class_artifacts["5"]
    ws.close()
    leak = ws_root / "certificates" / "backup.bin"
    leak.write_bytes(b"header" + (ws_root / "artifacts" / victim).read_bytes())
    result = _forget(ws_root, ["5"])
    assert result["residual_scan"]["clean"] is False
    assert {"file": "certificates/backup.bin", "pattern": 0} in result["residual_scan"]["hits"]


@pytest.mark.parametrize("classes,error,message", [
    (["42"], NotFoundError, "no class"),
    ([str(i) for i in range(10)], RefusedError, "no class"),
    ([], RefusedError, "at least one"),
])
def test_refusals_change_nothing(ws_root: Path, classes, error, message) -> None:  # noqa: ANN001
    before = _state(ws_root)
    with pytest.raises(error, match=message):
        _forget(ws_root, classes)
    assert _state(ws_root) == before


def test_already_forgotten_is_refused(ws_root: Path) -> None:
    _forget(ws_root, ["2"])
    before = _state(ws_root)
    with pytest.raises(RefusedError, match="already forgotten"):
        _forget(ws_root, ["2"])
    assert _state(ws_root) == before


def _request(root: Path, classes: list[str], approve: bool) -> int:
    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        rid = approvals.create_request(session, model_name="demo", classes=classes,
                                  subject_key=approvals.key_of(ws),
                                  subject="subject-17", legal_basis="GDPR Art. 17",
                                  operator="alice").id
        if approve:
            approvals.approve(session, rid, "bob")
    ws.close()
    return rid


def test_request_must_be_approved_and_match(ws_root: Path) -> None:
    unapproved = _request(ws_root, ["4"], approve=False)
    with pytest.raises(RefusedError, match="must be approved"):
        _forget(ws_root, ["4"], unapproved)
    approved = _request(ws_root, ["4"], approve=True)
    with pytest.raises(UnpromptError, match="covers"):
        _forget(ws_root, ["6"], approved)
    result = _forget(ws_root, ["4"], approved)
    ws = Workspace.open(ws_root)
    with ws.sessions() as session:
        request = reqs.get_request(session, approved)
        assert request.status == "executed" and request.executed_by == "alice"
        assert request.result["version"] == result["version"]
    ws.close()
