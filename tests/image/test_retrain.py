"""The retrain follow-up (docs/design.md section 18): a `full` model whose forgets were
approximate is rebuilt without every forgotten class, promoted in one transaction, every
earlier byte purged, and the requests it covers become exact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.jobs import CancelToken, run_job
from engine.retrain import decide_retrain, retrain_job
from storage import auditlog
from storage import requests as reqs
from storage.erasure_kinds import version_kind
from storage.errors import RefusedError
from storage.models import Artifact, AuditLogEntry, AuditRun, ModelVersion
from storage.registry import get_model, live_version
from storage.settings import set_setting
from storage.workspace import Workspace
from tests import approvals
from tests.image.conftest import approved_request


def earlier_tensors(root: Path) -> list[bytes]:
    """The bytes of every non-constant tensor the earlier versions hold."""
    from engine.serialize import class_tensor_fingerprints

    ws = Workspace.open(root)
    with ws.sessions() as session:
        shas = {s for v in session.query(ModelVersion)
                for s in [v.shared_artifact, *v.class_artifacts.values()]}
    ws.close()
    present = [root / "artifacts" / s for s in shas if (root / "artifacts" / s).exists()]
    return [t for p in present for t in class_tensor_fingerprints(p.read_bytes())
            if len(set(t)) > 1]


@pytest.fixture(scope="session")
def retrained(forgotten_workspace: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict, list[bytes]]:
    """The forgotten workspace retrained once: its root, the result, the earlier tensors."""
    root = tmp_path_factory.mktemp("retrained") / "ws"
    shutil.copytree(forgotten_workspace, root)
    tensors = earlier_tensors(root)
    return root, run_job(retrain_job(root, model_name="demo", operator="carol")), tensors


def test_retrain_promotes_an_exact_version_and_leaves_no_earlier_byte(retrained) -> None:
    forgotten, out, tensors = retrained
    assert out["status"] == "promoted" and out["version"] == 4 and out["from_version"] == 3
    assert out["residual_scan"]["clean"] and out["residual_scan"]["patterns"] > 0
    assert sorted(out["covered"]) == [1, 2]  # both pending requests, one retrain
    ws = Workspace.open(forgotten)
    with ws.sessions() as session:
        model = get_model(session, "demo")
        live = live_version(session, model)
        assert version_kind(model, live) == "exact" and sorted(map(int, live.class_artifacts)) == [
            0, 1, 2, 4, 5, 6, 8, 9]
        assert [v.status for v in model.versions] == ["purged"] * 3 + ["live"]
        run = session.get(AuditRun, out["reference_run"])  # the retrain IS the reference
        assert run.metrics["shared_artifact"] == live.shared_artifact
        assert run.metrics["class_artifacts"] == live.class_artifacts
        for rid in (1, 2):
            request = reqs.get_request(session, rid)
            assert reqs.request_kind(request, model) == "exact" and request.exact_at is not None
            assert request.suppressed_at == request.executed_at < request.exact_at
            assert request.result["retrain"]["residual_scan"]["clean"]
            assert request.result["residual_scan"]["clean"]  # the forget's own stays
        assert session.query(Artifact).filter_by(status="purging").count() == 0
        assert auditlog.verify(session).valid
        actions = [e.action for e in session.query(AuditLogEntry).order_by(AuditLogEntry.seq)]
        assert "model.retrained" in actions and actions.count("request.exact") == 2
    ws.close()
    everything = b"".join(p.read_bytes() for p in forgotten.rglob("*") if p.is_file())
    assert tensors and not any(t in everything for t in tensors)


def test_a_second_retrain_is_refused_with_the_reason(retrained) -> None:
    forgotten = retrained[0]
    with pytest.raises(RefusedError, match="no request waiting for a retrain"):
        run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    with pytest.raises(RefusedError, match="request 1 needs no retrain: it is already exact"):
        run_job(retrain_job(forgotten, model_name="demo", operator="carol", requests=[1]))


def test_a_forget_after_the_retrain_is_suppressed_again_and_waits(retrained,
                                                                  tmp_path: Path) -> None:
    """The retrained model's shared weights learned every class it kept: forgetting one of
    them is prompt deletion again (approximate), and its request waits for a retrain."""
    from tests.image.conftest import forget_under_request

    root = tmp_path / "ws"
    shutil.copytree(retrained[0], root)
    rid = forget_under_request(root, "5")
    ws = Workspace.open(root)
    with ws.sessions() as session:
        request = reqs.get_request(session, rid)
        assert request.erasure_kind == "approximate" and request.exact_at is None
        assert live_version(session, get_model(session, "demo")).erasure_kind == "approximate"
    ws.close()


def test_a_model_that_forgot_nothing_under_a_request_is_refused(ws_root: Path) -> None:
    with pytest.raises(RefusedError, match="no request waiting for a retrain"):
        run_job(retrain_job(ws_root, model_name="demo", operator="carol"))


def test_a_request_not_yet_executed_is_refused(forgotten: Path) -> None:
    rid = approved_request(forgotten, "5", "subject-5")
    with pytest.raises(RefusedError, match=f"request {rid} needs no retrain: it is approved"):
        run_job(retrain_job(forgotten, model_name="demo", operator="carol", requests=[rid]))


def test_a_cancelled_retrain_changes_nothing_and_can_be_rerun(forgotten: Path) -> None:
    token = CancelToken()

    def cancel_at_evaluation(record) -> None:
        if "evaluating" in record.message:
            token.set()  # the last point where cancel takes effect

    with pytest.raises(Exception, match="cancelled"):
        run_job(retrain_job(forgotten, model_name="demo", operator="carol", cancel=token),
                cancel_at_evaluation)
    ws = Workspace.open(forgotten)
    with ws.sessions() as session:
        assert live_version(session, get_model(session, "demo")).number == 3
        assert reqs.get_request(session, 1).exact_at is None
    ws.close()
    out = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    assert out["cached"] and out["version"] == 4  # the stored reference is promoted


def test_a_class_forgotten_while_the_retrain_ran_is_never_brought_back(forgotten: Path
                                                                       ) -> None:
    """A forget interleaved with the long retrain (issue 22): the retrained model learned the
    class, so the promotion is refused and that reference is retired and purged."""
    from tests.image.conftest import forget_under_request

    def forget_meanwhile(record) -> None:
        if "evaluating" in record.message:
            forget_under_request(forgotten, "5")

    with pytest.raises(RefusedError, match="'5' was forgotten while it ran"):
        run_job(retrain_job(forgotten, model_name="demo", operator="carol"), forget_meanwhile)
    ws = Workspace.open(forgotten)
    with ws.sessions() as session:
        model = get_model(session, "demo")
        assert live_version(session, model).number == 4  # the forget's, not a retrain
        runs = session.query(AuditRun).filter_by(kind="reference").all()
        assert [r.metrics["status"] for r in runs] == ["retired"]
        assert not any((forgotten / "artifacts" / sha).exists()
                       for sha in runs[0].metrics["class_artifacts"].values())
    ws.close()
    out = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    assert sorted(out["covered"]) == [1, 2, 3]
    assert sorted(out["accuracy_retrain"]["forgotten"]) == ["3", "5", "7"]


def test_a_retrain_below_the_margin_waits_for_a_signed_decision(forgotten: Path) -> None:
    ws = Workspace.open(forgotten)
    with ws.sessions.begin() as session:
        set_setting(session, "retrain_margin", -1.0, "admin")  # any retrain is "too low"
    ws.close()
    held = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    assert held["status"] == "awaiting_decision"
    again = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    assert again["status"] == "awaiting_decision" and again["cached"]
    with pytest.raises(RefusedError, match="needs a reason"):
        decide_retrain(forgotten, model_name="demo", operator="bob", accept=True, reason=" ",
                       passphrase=approvals.passphrase_of("bob"))
    signed = decide_retrain(forgotten, model_name="demo", operator="bob", accept=True,
                            reason="accuracy loss accepted by the DPO",
                            passphrase=approvals.passphrase_of("bob"))
    assert signed["action"] == "model.retrain_accepted"
    out = run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    assert out["status"] == "promoted"
    ws = Workspace.open(forgotten)
    with ws.sessions() as session:
        actions = [e.action for e in session.query(AuditLogEntry).order_by(AuditLogEntry.seq)]
        assert actions.count("model.retrain_held") == 1
        assert actions.index("model.retrain_accepted") < actions.index("model.retrained")
    ws.close()


def test_a_rejected_retrain_keeps_the_live_version(forgotten: Path) -> None:
    from engine.retrain import held_reference

    ws = Workspace.open(forgotten)
    with ws.sessions.begin() as session:
        set_setting(session, "retrain_margin", -1.0, "admin")
    ws.close()
    run_job(retrain_job(forgotten, model_name="demo", operator="carol"))
    decide_retrain(forgotten, model_name="demo", operator="bob", accept=False,
                   reason="too costly", passphrase=approvals.passphrase_of("bob"))
    with pytest.raises(RefusedError, match="waiting for a decision"):
        decide_retrain(forgotten, model_name="demo", operator="bob", accept=True,
                       reason="changed my mind", passphrase=approvals.passphrase_of("bob"))
    ws = Workspace.open(forgotten)
    with ws.sessions() as session:
        assert live_version(session, get_model(session, "demo")).number == 3
        assert held_reference(session, "demo") is None
    ws.close()


def test_a_model_of_another_kind_is_refused(ws_root: Path) -> None:
    from storage.versions import NewModel, register_model

    ws = Workspace.open(ws_root)
    with ws.sessions.begin() as session:
        register_model(session, NewModel(
            name="lm", kind="llm", backbone="smollm2", mode="guard", dataset_ref={},
            config={}, shared_artifact="", class_artifacts={}, class_names={}, metrics={},
            erasure_kind=""), "admin")
    ws.close()
    with pytest.raises(RefusedError, match="llm model that this product did not fine-tune: "
                                           "its forget rules guard it at inference"):
        run_job(retrain_job(ws_root, model_name="lm", operator="carol"))
