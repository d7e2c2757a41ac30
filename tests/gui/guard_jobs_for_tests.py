"""Stand-ins for ``engine.guard.registry_jobs`` (same names and options, no language model):
the guard screen's tests run them in the test worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.jobs import Progress
from storage.models import AuditRun, ForgetRule, Model, ModelVersion
from storage.workspace import Workspace

GATE = "hold-rule-build"  # while this file is in the workspace, add_rule_job waits
CALIBRATION = {"threshold": 0.62, "target_fpr": 0.01, "tpr": 0.93, "fpr": 0.008,
               "n_positive": 40, "n_negative": 250, "n_fit_positive": 120,
               "n_fit_negative": 750, "method": "held-out calibration split",
               "curve": {"threshold": [0.2, 0.4, 0.62, 0.8], "tpr": [1.0, 0.97, 0.93, 0.7],
                         "fpr": [0.2, 0.05, 0.008, 0.0]},
               "sigma_search": {"known": 12, "evaluated": 30},
               "sources": {"fit_positive": {"written": 30, "augmented": 90},
                           "fit_negative": {"written": 700, "augmented": 50},
                           "positive": {"written": 10, "augmented": 30},
                           "negative": {"written": 235, "augmented": 15},
                           "calibration": "drawn from the examples and their augmented "
                                          "variants"}}


def _model(session: Any, name: str | None) -> Model:
    query = session.query(Model).filter_by(kind="llm")
    return (query.filter_by(name=name) if name else query).first()


def load_model_job(workspace: str, *, operator: str, model: str | None = None):  # noqa: ANN201
    yield Progress(0.5, "loading the offline default model")
    ws = Workspace.open(workspace)
    with ws.sessions.begin() as session:
        if _model(session, model) is None:
            row = Model(name=model or "smollm2-135m-instruct", kind="llm")
            session.add(row)
            session.flush()
            session.add(ModelVersion(model_id=row.id, number=1))
    ws.close()
    return {"registered_as": model or "smollm2-135m-instruct"}


def add_rule_job(workspace: str, *, operator: str, name: str | None = None,
                 forget_file: str | None = None, demo: bool = False,
                 model: str | None = None, **options: Any):  # noqa: ANN201
    forget = Path(forget_file).read_text().split("\n") if forget_file else ["q"] * 10
    yield Progress(0.5, "training the prompt classifier")
    while (Path(workspace) / GATE).exists():  # a test holds the build here
        yield Progress(0.5, "waiting for the test's gate")
        time.sleep(0.01)
    ws = Workspace.open(workspace)
    with ws.sessions.begin() as session:
        session.add(ForgetRule(
            model_id=_model(session, model).id, name="harry-potter" if demo else name,
            description=options.get("description", ""), classifier_artifact="0" * 64,
            examples={"forget": [{"prompt": p} for p in forget if p], "retain": []},
            threshold=0.62, sigma=0.14, calibration=CALIBRATION,
            trace=[{"x": 1.0}, {"x": 0.9}],
            corruption_params={"target_fpr": options.get("target_fpr")}))
    ws.close()
    return {"name": name}


def set_rule_status(workspace: str, *, rule: str, enabled: bool, operator: str,
                    model: str | None = None, request: int | None = None) -> dict:
    ws = Workspace.open(workspace)
    with ws.sessions.begin() as session:
        row = session.query(ForgetRule).filter_by(name=rule).one()
        row.status = "active" if enabled else "disabled"
    ws.close()
    return {"name": rule, "status": "active" if enabled else "disabled"}


def ask_job(workspace: str, *, prompts: list[str], model: str | None = None,
            max_new_tokens: int = 64, unguarded: bool = False):  # noqa: ANN201
    yield Progress(0.5, "answering")
    flagged = "potter" in prompts[0].lower()
    return {"model": model, "rules": ["harry-potter"], "answers": [{
        "prompt": prompts[0], "flagged": flagged, "score": 0.91 if flagged else 0.05,
        "rule": "harry-potter" if flagged else None,
        "answer": "I am not sure who that is." if flagged else "Paris.",
        "unguarded_answer": "Ron Weasley." if flagged else "Paris.", "guard_ms": 4.0}]}


def evaluate_rule_job(workspace: str, *, rule: str, operator: str,
                      model: str | None = None):  # noqa: ANN201
    yield Progress(0.5, "forget set: 1/2")
    metrics = {"basis": "held-out",
               "knowledge": {"known": 9, "evaluated": 30, "after": 0.0, "ignorant": 0.05},
               "classifier": {"tpr_forget": 0.95, "fpr_neighbour": 0.1, "fpr_general": 0.0,
                              "latency_ms": {"p50": 21.0}},
               "side_effects": {"identical_unflagged": 1.0}}
    ws = Workspace.open(workspace)
    with ws.sessions.begin() as session:
        version = _model(session, model).versions[0]
        session.add(AuditRun(version_id=version.id, kind="guard", metrics=metrics,
                             config={"rule": rule, "rule_version": 1}))
    ws.close()
    return metrics
