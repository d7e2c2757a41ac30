"""A synthetic stored audit (the shapes of ``engine/audit/compose.py``), without torch."""

from __future__ import annotations

from typing import Any

from storage import audits
from storage.models import ClassEntry, ErasureRequest, Model, ModelVersion
from storage.workspace import Workspace
from tests.gui.demo_data import CLASSES

ATTACKS = ("loss", "confidence", "entropy")


def _roc(bend: float) -> dict[str, Any]:
    grid = [i / 20 for i in range(21)]
    logs = [10 ** (-5 + i / 4) for i in range(21)]
    return {"linear": {"fpr": grid, "tpr": [x ** bend for x in grid]},
            "log": {"fpr": logs, "tpr": [max(x ** bend, 1e-5) for x in logs]}}


def _hist(shift: int) -> dict[str, Any]:
    return {"edges": [float(i) for i in range(11)],
            "members": [max(0, 8 - abs(i - 5 - shift)) for i in range(10)],
            "non_members": [max(0, 6 - abs(i - 5)) for i in range(10)]}


def _metrics(forget: float, relearn: dict[str, float], erasure: str) -> dict[str, Any]:
    attack = {"auc": 0.52, "tpr_at_1pct_fpr": 0.012, "tpr_at_0_1pct_fpr": 0.001,
              "per_class": {}}
    return {"scorecard": {"forget_accuracy": forget, "retain_accuracy": 0.95,
                          "test_accuracy": 0.9, "run_time_s": 0.08},
            "mia_efficacy": 1.0, "mia_efficacy_degenerate": True, "mia_efficacy_top1": 0.62,
            "threshold_attacks": {a: dict(attack) for a in ATTACKS},
            "forget_distinguishability_auc": 0.55,
            "linear_probe": {"forget_accuracy": 0.4, "retain_accuracy": 0.9, "per_class": {}},
            "relearn": relearn, "erasure": erasure}


def curves() -> dict[str, Any]:
    both = ("model", "reference")
    accuracy = {name: 0.9 for name in CLASSES}
    return {
        "classes": {name: i for i, name in enumerate(CLASSES)}, "forgotten": ["t-shirt"],
        "attacks": list(ATTACKS),
        "per_class_accuracy": {"before": accuracy, "after": {**accuracy, "t-shirt": 0.0},
                               "reference": {**accuracy, "t-shirt": 0.0}},
        "roc": {w: {a: _roc(0.8) for a in ATTACKS} for w in both},
        "forget_roc": {w: {a: _roc(0.9) for a in ATTACKS} for w in both},
        "histograms": {w: {part: {a: _hist(1) for a in ATTACKS} for part in ("all", "forget")}
                       for w in both},
        "distinguishability": {w: {a: 0.55 for a in ATTACKS} for w in both},
        "relearn": {"shots": [1, 5, 20],
                    "model": {"mean": {"1": 0.5, "5": 0.8, "20": 0.9}, "runs": {}},
                    "reference": {"mean": {"1": 0.3, "5": 0.6, "20": 0.8}, "runs": {}}},
    }


def with_statistics(metrics: dict[str, Any], curves: dict[str, Any]) -> None:
    """Add what an audit with a second reference stores (docs/design.md section 15)."""
    rmia = {"a": 0.4, "a_chosen": True, "gamma": 1.0, "reference_models": ["twin"],
            "auc": 0.58, "tpr_at_1pct_fpr": 0.03, "members": 500, "non_members": 100,
            "omitted": {"tpr_at_0_1pct_fpr": "a TPR at 0.1% FPR needs at least 1000 "
                                             "non-members, this rests on 100"},
            "per_class": {}}
    metrics["rmia"] = rmia
    metrics["reference"]["rmia"] = {**rmia, "auc": 0.51}
    test = {"model": 0.9, "model_ci": [0.86, 0.93], "reference": 0.91, "gap": -0.01,
            "gap_ci": [-0.03, 0.01], "floor": 0.04, "verdict": "pass", "samples": 90}
    relearn = {"model": 0.8, "model_ci": [0.7, 0.9], "reference": 0.6, "gap": 0.2,
               "gap_ci": [0.12, 0.28], "floor": 0.05, "verdict": "fail", "beyond": 0.15,
               "beyond_ci": [0.07, 0.23], "samples": 5}
    metrics["statistics"] = {
        "method": {"resamples": 200, "level": 0.95, "floor": "two retrain references"},
        "figures": {"scorecard.test_accuracy": test, "relearn.5": relearn},
        "per_class": {"t-shirt": {"figures": {"relearn.5": relearn}, "verdict": "fail",
                                  "counts": {"pass": 0, "fail": 1, "inconclusive": 0,
                                             "not_judged": 0}, "samples": 5}},
        "verdict": {"verdict": "fail", "counts": {"pass": 1, "fail": 1, "inconclusive": 0,
                                                  "not_judged": 0}, "samples": 90,
                    "classes": {"pass": 0, "fail": 1, "inconclusive": 0, "not_judged": 0}}}
    metrics["reference"]["floor"] = {"scorecard.test_accuracy": 0.04, "relearn.5": 0.05}
    curves["rmia"] = {"model": _roc(0.7), "reference": _roc(0.95), "twin": _roc(1.0)}
    curves["roc"]["twin"] = {a: _roc(0.9) for a in ATTACKS}
    curves["relearn"]["twin"] = {"mean": {"1": 0.35, "5": 0.55, "20": 0.85}, "runs": {}}


def add_audit(ws: Workspace, model: str = "fashion-vit", operator: str = "carol",
              statistics: bool = False) -> int:
    """Version 2 of ``model`` with 't-shirt' forgotten, audited; returns the AuditRun id.
    ``statistics``: as stored with a second retrain reference (RMIA, verdicts, bands)."""
    with ws.sessions.begin() as session:
        row = session.query(Model).filter_by(name=model).one()
        version = ModelVersion(model_id=row.id, number=2, erasure_kind="approximate")
        session.add(version)
        session.flush()
        entry = session.query(ClassEntry).filter_by(model_id=row.id, label_index=0).one()
        entry.status, entry.forgotten_in_version_id = "forgotten", version.id
        executed = session.query(ErasureRequest).filter_by(status="executed").first()
        entry.request_id = executed.id if executed else None  # demo_data: 't-shirt' 
        metrics = _metrics(0.0, {"1": 0.5, "5": 0.8, "20": 0.9}, "approximate")
        metrics["reference"] = _metrics(0.0, {"1": 0.3, "5": 0.6, "20": 0.8}, "exact")
        config = {"reference": True, "relearn": True, "seconds": 12.5,
                  "samples": {"train": 500, "test": 100}, "reference_cached": False}
        charts = curves()
        if statistics:
            with_statistics(metrics, charts)
        run = audits.record_audit(session, version_id=version.id, config=config,
                                  metrics=metrics, curves=charts, operator=operator)
        return run.id


def fake_audit_job(workspace: str, model_name: str, *, operator: str,
                   **_options: Any):  # noqa: ANN201 - a job generator
    """Stands in for ``engine.audit.job:audit_job`` (run by the test worker)."""
    from engine.jobs import Progress

    yield Progress(0.5, "scoring the forgotten model")
    ws = Workspace.open(workspace)
    try:
        with ws.sessions.begin() as session:
            row = session.query(Model).filter_by(name=model_name).one()
            version = max(row.versions, key=lambda v: v.number)
            run = audits.record_audit(session, version_id=version.id,
                                      config={"reference": False}, metrics=_metrics(
                                          0.0, None, "approximate"),
                                      curves=curves(), operator=operator)
            return {"audit_run": run.id}
    finally:
        ws.close()


def slow_audit_job(workspace: str, model_name: str, *, operator: str, cancel: Any,
                   **_options: Any):  # noqa: ANN201 - a job generator
    """An audit that runs until it is cancelled (the worker stops it at a yield)."""
    import time

    from engine.jobs import Progress

    while True:
        yield Progress(None, "scoring the forgotten model")
        time.sleep(0.02)
