"""audit_job against the registry: stored figures, reference cache, requests, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.audit.job import audit_job
from engine.audit.schema import check_metrics
from engine.jobs import Cancelled, CancelToken, run_job
from storage import auditlog
from storage import audits as audit_rows
from storage.errors import UnpromptError
from storage.models import Artifact, AuditRun, ErasureRequest
from storage.workspace import Workspace
from tests.audit.conftest import QUICK

TOP_KEYS = {"scorecard", "mia_efficacy", "mia_efficacy_degenerate", "mia_efficacy_top1",
            "threshold_attacks", "forget_distinguishability_auc", "linear_probe", "relearn",
            "lira", "erasure", "erasure_statement", "reference", "audit_run", "rmia",
            "statistics"}


def _rows(root: Path, kind: str) -> list[AuditRun]:
    ws = Workspace.open(root)
    with ws.sessions() as session:
        rows = session.query(AuditRun).filter_by(kind=kind).order_by(AuditRun.id).all()
    ws.close()
    return rows


def test_every_figure_is_present_and_in_range(audited: dict) -> None:
    result = audited["result"]
    assert set(result) == TOP_KEYS
    assert set(result["reference"]) == TOP_KEYS - {"reference", "audit_run",
                                                   "erasure_statement", "statistics"} | {
        "floor"}
    metrics = {k: v for k, v in result.items() if k != "audit_run"}
    assert check_metrics(metrics, reference=True, lira=True, relearn=True) == []
    assert result["erasure"] == "approximate" and result["reference"]["erasure"] == "exact"
    assert set(result["relearn"]) == {"1", "5", "20"}
    assert result["scorecard"]["forget_accuracy"] == 0.0  # its prompt is gone
    assert result["mia_efficacy"] == 1.0 == result["reference"]["mia_efficacy"]
    # the forgotten class has no column in either model: SalUn's figure says nothing
    assert result["mia_efficacy_degenerate"] is True
    assert result["reference"]["mia_efficacy_degenerate"] is True
    assert 0.0 <= result["mia_efficacy_top1"] <= 1.0
    assert "3" in result["threshold_attacks"]["loss"]["per_class"]
    assert result["lira"]["k"] == 2 and result["lira"]["forget_auc"] == 0.5


def test_check_metrics_names_missing_and_out_of_range_figures(audited: dict) -> None:
    import copy

    broken = copy.deepcopy(audited["result"])
    del broken["audit_run"]
    broken["mia_efficacy"] = 1.5
    broken["mia_efficacy_degenerate"] = 1
    del broken["reference"]["mia_efficacy_top1"]
    broken["threshold_attacks"]["loss"]["per_class"]["3"]["auc"] = float("nan")
    del broken["reference"]["linear_probe"]
    problems = check_metrics(broken, reference=True, lira=True, relearn=True)
    assert "missing reference.linear_probe" in problems
    assert "missing reference.mia_efficacy_top1" in problems
    assert "mia_efficacy_degenerate: 1 out of range" in problems
    assert any(p.startswith("mia_efficacy") for p in problems)
    assert any("per_class.3.auc" in p for p in problems)


def test_the_audit_is_stored_logged_and_verifies_the_request(audited: dict) -> None:
    root, result = audited["root"], audited["result"]
    ws = Workspace.open(root)
    with ws.sessions() as session:
        run = session.get(AuditRun, result["audit_run"])
        request = session.get(ErasureRequest, audited["request"])
        log = [e.action for e in session.query(auditlog.AuditLogEntry)]
        stored = {k: v for k, v in result.items() if k != "audit_run"}
        assert run.kind == "image" and run.metrics == stored
        assert run.request_id == request.id and request.status == "verified"
        assert request.result["audit_run"] == run.id
        assert log[-2:] == ["audit.recorded", "request.verified"]
        assert "audit.reference_trained" in log and auditlog.verify(session).valid
        listed = audit_rows.list_audits(session, "demo")
        assert [a["id"] for a in listed] == [run.id] and listed[0]["version"] == 2
    ws.close()
    fractions = [p.fraction for p in audited["progress"] if p.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_curves_hold_what_the_charts_need(audited: dict) -> None:
    ws = Workspace.open(audited["root"])
    with ws.sessions() as session:
        curves = session.get(AuditRun, audited["result"]["audit_run"]).curves
    ws.close()
    assert curves["forgotten"] == ["3"] and curves["classes"]["3"] == 3
    accuracy = curves["per_class_accuracy"]
    assert accuracy["after"]["3"] == 0.0 and accuracy["before"]["3"] > 0.3
    assert set(accuracy["reference"]) == set(accuracy["after"])
    for which in ("model", "reference"):
        roc = curves["roc"][which]["loss"]
        assert len(roc["linear"]["fpr"]) == 201 and len(roc["log"]["tpr"]) == 121
        hist = curves["histograms"][which]["forget"]["entropy"]
        assert sum(hist["members"]) > 0 and len(hist["edges"]) == len(hist["members"]) + 1
        assert curves["relearn"][which]["mean"].keys() == {"1", "5", "20"}
        assert len(curves["lira"][which]["linear"]["tpr"]) == 201
    assert curves["relearn"]["shots"] == [1, 5, 20]


def test_the_reference_never_learned_the_forgotten_class_and_is_reused(audited_root: Path
                                                                        ) -> None:
    [reference, twin] = _rows(audited_root, "reference")  # the twin: another seed
    for ref in (reference, twin):
        assert "3" not in ref.metrics["class_artifacts"] and 3 not in ref.config["retained"]
        assert ref.config["forgotten"] == [3]
    assert twin.config["train"]["seed"] == reference.config["train"]["seed"] + 1
    result = run_job(audit_job(audited_root, "demo", operator="carol", **QUICK))
    assert result["relearn"] is None and "lira" not in result
    [again, _twin] = _rows(audited_root, "reference")  # no third reference
    latest = _rows(audited_root, "image")[-1]
    assert latest.config["reference_cached"] is True and latest.config["reference_run"] == again.id
    assert latest.config["twin_run"] is None  # asked for no twin: no verdict either
    assert "statistics" in result and result["statistics"]["verdict"]["verdict"] is None


def test_forgetting_another_class_retires_the_reference_that_learned_it(audited_root: Path
                                                                         ) -> None:
    from engine.forget import forget_job

    old = _rows(audited_root, "reference")
    own = {s for ref in old for s in ref.metrics["class_artifacts"].values()}
    run_job(forget_job(audited_root, model_name="demo", classes=["5"], operator="alice"))
    run_job(audit_job(audited_root, "demo", operator="carol", **QUICK))
    *old_now, new = _rows(audited_root, "reference")
    assert all(r.metrics["status"] == "retired" for r in old_now) and len(old_now) == 2
    assert new.config["forgotten"] == [3, 5]
    assert not any((audited_root / "artifacts" / sha).exists() for sha in own)
    ws = Workspace.open(audited_root)
    with ws.sessions() as session:
        assert all(session.get(Artifact, sha).status == "purged" for sha in own)
    ws.close()


def test_cancel_stores_nothing(audited_root: Path) -> None:
    token = CancelToken()
    job = audit_job(audited_root, "demo", reference=True, operator="carol", cancel=token,
                    **QUICK)
    next(job)
    token.set()
    with pytest.raises(Cancelled):
        run_job(job)
    assert len(_rows(audited_root, "image")) == 1


def test_refusals(trained_root: Path, audited_root: Path) -> None:
    with pytest.raises(UnpromptError, match="no forgotten class"):
        run_job(audit_job(trained_root, "demo", reference=False, operator="carol"))
    with pytest.raises(UnpromptError, match="at least 2 shadow"):
        run_job(audit_job(audited_root, "demo", lira=1, operator="carol"))


def _approved_request(root: Path, classes: list[str]) -> int:
    from tests import approvals

    ws = Workspace.open(root)
    with ws.sessions.begin() as session:
        request = approvals.create_request(session, model_name="demo", classes=classes,
                                           subject="subject-18", operator="alice",
                                           legal_basis="GDPR Art. 17(1)(b)",
                                           subject_key=approvals.key_of(ws))
        approvals.approve(session, request.id, "bob")
        request_id = request.id
    ws.close()
    return request_id


def test_a_forget_purges_what_its_cached_reference_learned_of_the_class(audited_root: Path
                                                                        ) -> None:
    """Forget 3 (audited: the reference learned 5), then forget 5: no artifact file still
    holds the reference's prompt, head row or backbone for 5, and the request says so."""
    from engine.forget import forget_job
    from engine.residual_scan import scan_workspace
    from engine.serialize import class_tensor_fingerprints

    old, twin = _rows(audited_root, "reference")
    shas = [old.metrics["class_artifacts"]["5"], old.metrics["shared_artifact"]]
    learned = class_tensor_fingerprints((audited_root / "artifacts" / shas[0]).read_bytes())
    shas += [twin.metrics["class_artifacts"]["5"], twin.metrics["shared_artifact"]]
    request = _approved_request(audited_root, ["5"])
    result = run_job(forget_job(audited_root, model_name="demo", classes=["5"],
                                operator="alice", request=request))
    assert scan_workspace(audited_root / "artifacts", learned)["clean"]
    assert not any((audited_root / "artifacts" / sha).exists() for sha in shas)
    assert sorted(result["references_retired"]) == [old.id, twin.id]
    assert set(shas) <= set(result["purged"])
    old_now = _rows(audited_root, "reference")
    assert all(r.metrics["status"] == "retired" for r in old_now)  # at the forget
    ws = Workspace.open(audited_root)
    with ws.sessions() as session:
        checks = session.get(ErasureRequest, request).result
        assert set(shas) <= set(checks["purged"])
        assert sorted(checks["references_retired"]) == [old.id, twin.id]
        assert checks["residual_scan"]["clean"]
        assert checks["residual_scan"]["patterns"] > len(learned)  # the model's and the ref's
    ws.close()


def test_an_audit_with_a_forget_interleaved_records_nothing(audited_root: Path) -> None:
    """The worker may run a forget at one of the audit's yields (issue 22): the audit
    measured the version before it, so it is not filed, and the cached reference, which
    learned the class just forgotten, is retired at once."""
    from engine.forget import forget_job
    from storage.errors import RefusedError

    own = {s for ref in _rows(audited_root, "reference")
           for s in ref.metrics["class_artifacts"].values()}
    job = audit_job(audited_root, "demo", operator="carol", **QUICK)
    next(job), next(job)  # the model is loaded: the audit measures v2
    run_job(forget_job(audited_root, model_name="demo", classes=["5"], operator="alice"))
    with pytest.raises(RefusedError, match=r"v2 was not recorded: the model became v3 while "
                                           r"it ran \(forgotten meanwhile: 5\)"):
        run_job(job)
    assert len(_rows(audited_root, "image")) == 1
    assert _rows(audited_root, "reference")[0].metrics["status"] == "retired"
    assert not any((audited_root / "artifacts" / sha).exists() for sha in own)
