"""storage.audits without torch: reference rows, retirement, request verification."""

from __future__ import annotations

from storage import auditlog, audits
from storage import requests as reqs
from storage.models import ClassEntry
from storage.versions import NewModel, register_model
from tests import approvals


def _model(session, shared: str = "s" * 64):  # noqa: ANN001, ANN202
    version = register_model(session, NewModel(
        name="m", kind="image", backbone="vit_tiny_patch16_224", mode="frozen",
        dataset_ref={}, config={}, shared_artifact=shared,
        class_artifacts={0: "a" * 64, 1: "b" * 64, 2: "c" * 64},
        class_names={0: "zero", 1: "one", 2: "two"}, metrics={}, erasure_kind="exact"), "alice")
    return version.model, version


def _reference(session, version, retained: list[int], shared: str):  # noqa: ANN001, ANN202
    return audits.record_reference(session, version_id=version.id, config={
        "key": f"k{retained}", "forgotten": [0], "retained": retained}, metrics={
        "shared_artifact": shared, "class_artifacts": {str(c): f"{c}" * 64 for c in retained},
        "seconds": 1.0}, operator="alice")


def test_a_reference_is_found_by_key_and_retired_without_touching_shared_bytes(workspace
                                                                             ) -> None:
    with workspace.sessions.begin() as session:
        model, version = _model(session)
        ref = _reference(session, version, [1, 2], shared=version.shared_artifact)
        assert audits.find_reference(session, model, "k[1, 2]").id == ref.id
        assert audits.find_reference(session, model, "other") is None
        assert audits.stale_references(session, model) == []
        entry = session.query(ClassEntry).filter_by(label_index=1).one()
        entry.status = "forgotten"
        session.flush()
        assert audits.stale_references(session, model) == [ref]
        doomed = audits.retire_reference(session, ref, "alice", "test")
        # the frozen backbone's bytes are the live model's too: never purged with the reference
        assert version.shared_artifact not in doomed
        assert sorted(doomed) == ["1" * 64, "2" * 64]
        assert audits.references(session, model) == []
        assert auditlog.verify(session).valid


def test_recording_an_audit_verifies_executed_requests_only(workspace) -> None:
    with workspace.sessions.begin() as session:
        model, version = _model(session)
        request = approvals.create_request(session, model_name="m", classes=["0"], subject="s",
                                      subject_key=approvals.key_of(workspace),
                                      legal_basis="GDPR Art. 17", operator="alice")
        approvals.approve(session, request.id, "bob")
        pending = approvals.create_request(session, model_name="m", classes=["1"], subject="t",
                                      subject_key=approvals.key_of(workspace),
                                      legal_basis="GDPR Art. 17", operator="alice")
        reqs.mark_executed(session, request, "alice", "exact", {})
        run = audits.record_audit(session, version_id=version.id, config={},
                                  metrics={"erasure": "exact"}, curves={}, operator="carol",
                                  requests=[request, pending])
        assert run.request_id == request.id and request.status == "verified"
        assert pending.status == "received"
        assert audits.latest_audit(session, version.id).id == run.id
        listed = audits.get_audit(session, run.id)
        assert listed["model"] == "m" and listed["curves"] == {}
