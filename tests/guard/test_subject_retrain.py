"""The retrain follow-up of a fine-tuned language model (docs/design.md sections 14, 18):
`retrain N` fine-tunes the base again without every person whose request waits, promotes
it in one transaction, destroys the earlier weights, retires the people's rules and makes
the requests exact. Tiny model, tiny corpus, one epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.guard import subject_jobs as jobs
from engine.jobs import Cancelled, CancelToken, run_job
from engine.retrain import retrain_job
from storage import auditlog, finetunes
from storage import requests as reqs
from storage.errors import RefusedError
from storage.models import Artifact, AuditLogEntry, ForgetRule
from storage.registry import live_version
from storage.workspace import Workspace
from tests import approvals
from tests.guard.finetuned import PEOPLE, copy_workspace, request_about


@pytest.fixture()
def root(crm_suppressed: Path, tmp_path: Path) -> Path:
    return copy_workspace(crm_suppressed, tmp_path / "ws")


def _files_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_the_retrain_leaves_the_people_out_and_makes_their_requests_exact(root: Path) -> None:
    from engine.guard.subject_retrain import _tensors

    v1 = root / jobs.MODELS_DIR / "crm" / "v1"
    earlier = [t for t in _tensors(v1) if len(set(t[:64])) > 1]
    out = run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    trained = [t for t in earlier if t not in _tensors(Path(out["folder"]))]  # not frozen
    assert out["status"] == "promoted" and out["version"] == 2 and out["from_version"] == 1
    assert sorted(out["covered"]) == [1, 2] and out["people_left_out"] == 2
    assert out["residual_scan"]["clean"] and out["residual_scan"]["patterns"] > 0
    assert not v1.exists() and Path(out["folder"]).is_dir()
    assert out["records"] == 4  # two people x two facts kept
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            model = finetunes.finetuned_model(session, "crm")
            assert [v.status for v in model.versions] == ["purged", "live"]
            assert sorted(finetunes.subjects_of(session, model)) == sorted(PEOPLE[2:])
            assert model.config["spec"] == out["folder"]
            for rid in (1, 2):
                request = reqs.get_request(session, rid)
                assert reqs.request_kind(request, model) == "exact"
                assert request.suppressed_at < request.exact_at
                assert request.result["retrain"]["residual_scan"]["clean"]
                rule = session.scalars(select(ForgetRule).where(
                    ForgetRule.name == request.scope["rule"])).one()
                assert rule.status == "retired" and rule.examples == {}
                for sha in (request.scope["subject_records"], rule.classifier_artifact):
                    assert session.get(Artifact, sha).status == "purged"
            actions = session.scalars(select(AuditLogEntry.action)).all()
            assert actions.count("rule.retired") == 2 and actions.count("request.exact") == 2
            assert "model.retrained" in actions and auditlog.verify(session).valid
    finally:
        ws.close()
    everything = _files_bytes(root)
    assert trained and not any(t[:4096] in everything for t in trained)
    with pytest.raises(RefusedError, match="no request waiting for a retrain"):
        run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    _certified_exact(root, out)


def _certified_exact(root: Path, out: dict) -> None:
    """The certificate issued after the retrain says exact, mechanism retrain, and
    verifies; the retired rule can be neither enabled nor disabled."""
    import json

    from reports.certify_service import certify, verify_file
    from storage.certificates import certificates_of
    from storage.rules import set_status

    ws = Workspace.open(root)
    try:
        issued = certify(ws, 1, root.parent / "exact.pdf", operator="carol", passphrase=b"pw")
        assert verify_file(ws, issued["pdf"])["valid"]
        with ws.sessions.begin() as session:
            manifest = json.loads(certificates_of(session, 1)[-1].manifest)
            rule = reqs.get_request(session, 1).scope["rule"]
            with pytest.raises(RefusedError, match="was retired when a retrain"):
                set_status(session, rule, True, "carol", model_name="crm")
    finally:
        ws.close()
    assert manifest["erasure"] == {"kind": "exact", "mechanism": "retrain", "residual": None,
                                   "weights_changed": True}
    assert manifest["model"]["version_after"] == out["version"] and "guard" not in manifest
    assert manifest["residual_scan"]["clean"] and manifest["timeline"]["exact_at"]


def test_a_cancelled_retrain_changes_nothing(root: Path) -> None:
    token = CancelToken()

    def cancel_at_scoring(record) -> None:  # noqa: ANN001
        if "scoring" in record.message:
            token.set()

    with pytest.raises(Cancelled):
        run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu",
                            cancel=token), cancel_at_scoring)
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            model = finetunes.finetuned_model(session, "crm")
            assert live_version(session, model).number == 1
            assert reqs.get_request(session, 1).exact_at is None
    finally:
        ws.close()
    assert sorted(p.name for p in (root / jobs.MODELS_DIR / "crm").iterdir()) == ["v1"]


def test_killed_after_the_commit_the_next_open_finishes_the_purge(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.guard.subject_retrain as retrain

    def die(step: str) -> None:
        if step == "retrain-after-commit":
            raise KeyboardInterrupt  # as a power cut would, once the commit is made

    monkeypatch.setattr(retrain, "crash_point", die)
    with pytest.raises(KeyboardInterrupt):
        run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    assert (root / jobs.MODELS_DIR / "crm" / "v1").is_dir()
    ws = Workspace.open(root)  # resumes: destroys v1, purges, scans from fingerprints
    try:
        assert not (root / jobs.MODELS_DIR / "crm" / "v1").exists()
        with ws.sessions() as session:
            scan = reqs.get_request(session, 1).result["retrain"]["residual_scan"]
            assert scan["clean"] and scan["resumed"]
            assert "model.retrain_resumed" in session.scalars(select(AuditLogEntry.action)).all()
    finally:
        ws.close()


def test_a_guarded_model_not_fine_tuned_here_is_refused(tmp_path: Path) -> None:
    from storage.rules import register_language_model

    ws = Workspace.open(tmp_path / "ws")
    with ws.sessions.begin() as session:
        register_language_model(session, "chat", None, None, {}, "admin")
    ws.close()
    with pytest.raises(RefusedError, match="did not fine-tune: its forget rules guard it"):
        run_job(retrain_job(tmp_path / "ws", model_name="chat", operator="carol"))


def test_the_gui_submits_the_subject_jobs_by_their_worker_targets() -> None:
    from engine.job_classes import LONG, job_class
    from engine.worker import resolve_target
    from gui.subject_action import FORGET_SUBJECT_JOB

    assert jobs.SUBJECT_JOBS["lm.forget"] == FORGET_SUBJECT_JOB
    for target in jobs.SUBJECT_JOBS.values():  # the worker runs them, as long jobs
        assert callable(resolve_target(target)) and job_class(target) == LONG


def test_a_retrain_below_the_margin_is_held_then_accepted_without_training(
        root: Path, tiny_encoder_dir: Path) -> None:
    from storage.retrain import decide_held
    from storage.retrain_plan import held_retrains
    from storage.settings import set_setting

    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        set_setting(session, "retrain_margin", -1.0, "admin")  # any retrain is "too low"
    ws.close()
    held = run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    assert held["status"] == "awaiting_decision" and held["margin"] == -1.0
    with pytest.raises(RefusedError, match="held for an operator's decision"):
        run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    later = request_about(root, PEOPLE[2])  # executed after the held model was trained
    run_job(jobs.forget_subject_job(root, request=later, operator="bob",
                                    encoder=str(tiny_encoder_dir)))
    ws = Workspace.open(root)
    try:
        with ws.sessions.begin() as session:
            row = held_retrains(session)["crm"]
            assert row["measure"] == "mean answer probability on the kept people"
            decide_held(session, finetunes.finetuned_model(session, "crm"), "bob",
                        approvals.passphrase_of("bob"), True, "the DPO accepts it")
    finally:
        ws.close()
    messages: list[str] = []
    out = run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"),
                  lambda p: messages.append(p.message))
    assert out["status"] == "promoted" and out["version"] == 2 and out["covered"] == [1, 2]
    assert not any("fine-tuning" in m for m in messages)  # the held weights, not new ones
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            actions = session.scalars(select(AuditLogEntry.action)).all()
            assert actions.index("model.retrain_accepted") < actions.index("model.retrained")
            assert held_retrains(session) == {}
            model = finetunes.finetuned_model(session, "crm")  # it learned the later person
            assert PEOPLE[2] in finetunes.subjects_of(session, model)
            assert reqs.get_request(session, later).exact_at is None
    finally:
        ws.close()


def test_the_cli_retrains_a_fine_tuned_model(root: Path, capsys) -> None:  # noqa: ANN001
    from cli.app import main

    code = main(["--workspace", str(root), "--operator", "carol", "retrain", "crm"])
    out = capsys.readouterr().out
    assert code == 0 and "Retrained crm: v1 -> v2 (exact)" in out
    assert "without 2 person(s)" in out and "residual scan clean" in out
    assert "Requests now exact: #1, #2; their forget rules are retired." in out
