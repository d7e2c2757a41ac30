"""Deadline planning for the retrain follow-up (docs/design.md section 18).

Per model with requests waiting to become exact: how many, the earliest due date, the
estimated retrain time and whether a retrain started now would finish after that date.
The estimate scales the model's recorded training time (the last retrain's, else the
first training's) by the share of its classes a retrain keeps; for a fine-tuned language
model, the live version's fine-tune time by the share of its records a retrain keeps.
A retrain held for accuracy (``held_retrains``) waits for an operator's decision.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from storage.finetunes import FINETUNED
from storage.models import Model, utcnow
from storage.retrain import held_reference, pending_requests
from storage.scan_proofs import coverage_text

MEASURES = {"image": "retained-class accuracy",
            "llm": "mean answer probability on the kept people"}
RETRAINABLE = or_(Model.kind == "image",
                  and_(Model.kind == "llm", Model.training_mode == FINETUNED))


def estimate_seconds(model: Model, session: Session | None = None) -> float | None:
    """Seconds a retrain of ``model`` should take, from what its training took."""
    if model.kind == "llm":
        return _finetune_estimate(model, session)
    for version in reversed(model.versions):
        recorded = (version.metrics.get("retrain") or {}).get("seconds")
        if recorded:
            return float(recorded)
    first = model.versions[0].metrics.get("seconds") if model.versions else None
    if not first:
        return None
    trained = len(model.versions[0].class_artifacts) or 1
    kept = sum(c.status == "learned" for c in model.classes)
    return float(first) * min(1.0, kept / trained)


def _finetune_estimate(model: Model, session: Session | None) -> float | None:
    """The live fine-tune's seconds scaled by the records left once the people waiting
    are left out (a retrain is a fine-tune on those)."""
    live = [v for v in model.versions if v.status == "live"]
    metrics = live[-1].metrics if live else {}
    if not metrics.get("seconds"):
        return None
    total = int(metrics.get("records") or 0) or 1
    leaving = sum(int(r.scope.get("records") or 0)
                  for r in (pending_requests(session, model) if session else []))
    return float(metrics["seconds"]) * max(0.0, total - leaving) / total


def retrain_plan(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per model with requests waiting for a retrain, earliest due first."""
    now = now or utcnow()
    rows = []
    for model in session.scalars(select(Model).where(RETRAINABLE)):
        waiting = pending_requests(session, model)
        if not waiting:
            continue
        seconds = estimate_seconds(model, session)
        due = min(r.due_at for r in waiting)
        finish = now + dt.timedelta(seconds=seconds) if seconds is not None else None
        rows.append({"model": model.name, "kind": model.kind,
                     "requests": [r.id for r in waiting],
                     "earliest_due": due.isoformat(), "estimate_s": seconds,
                     "finish_at": finish.isoformat() if finish else None,
                     "late": finish is not None and finish > due})
    return sorted(rows, key=lambda r: r["earliest_due"])


def held_retrains(session: Session) -> dict[str, dict[str, Any]]:
    """``{model: figures}`` for every retrain held for an operator's decision: the live
    and retrained accuracy on the retained classes, the margin, the reference run."""
    held = {}
    for model in session.scalars(select(Model).where(RETRAINABLE)):
        run = held_reference(session, model)
        if run is not None:
            figures = run.metrics["retrain"]
            held[model.name] = {"model": model.name, "reference_run": run.id,
                                "measure": MEASURES[model.kind],
                                **{k: figures.get(k) for k in (
                                    "from_version", "margin", "retained_live",
                                    "retained_retrain")}}
    return held


def held_text(row: dict[str, Any]) -> str:
    """One line for an operator: the held retrain's figures and what to decide."""
    return (f"{row['model']}: retrain held, {row.get('measure') or MEASURES['image']} "
            f"{row['retained_retrain']:.1%} retrained against {row['retained_live']:.1%} "
            f"live (v{row['from_version']}), more than the {row['margin']:.1%} margin below "
            "it; an operator accepts (promote) or rejects it")


def plan_text(row: dict[str, Any]) -> str:
    """One line for an operator: what waits, how long a retrain takes, and the risk."""
    n = len(row["requests"])
    waits = f"{n} request{'s' if n != 1 else ''} waiting for a retrain"
    est = row["estimate_s"]
    took = "unknown" if est is None else _duration(est)
    text = (f"{row['model']}: {waits} (earliest due {row['earliest_due'][:10]}); "
            f"estimated retrain {took}")
    if row["late"]:
        return text + ": WARNING, started now it would finish after the earliest due date"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def lm_retrain_text(r: dict[str, Any]) -> str:
    """A fine-tuned language model's retrain (docs/design.md section 18), in words."""
    if r["status"] != "promoted":
        return (f"Retrain of {r['model']} held: mean answer probability on the kept people "
                f"{_p(r['retained_retrain'])} against {_p(r['retained_live'])} live, more "
                f"than the {r['margin']:.3f} margin below it. Nothing was promoted; decide "
                "with Held retrain… on the Requests screen or `retrain N --accept/--reject "
                "--reason TEXT`.")
    scan = "clean" if r["residual_scan"]["clean"] else "NOT CLEAN"
    covered = ", ".join(f"#{i}" for i in r["covered"])
    return (f"Retrained {r['model']}: v{r['from_version']} -> v{r['version']} (exact) in "
            f"{r['train_seconds']:.0f} s, fine-tuned from its base on {r['records']} records "
            f"without {r['people_left_out']} person(s).\nMean answer probability: kept people "
            f"{_p(r['retained_live'])} -> {_p(r['retained_retrain'])}, people left out "
            f"{_p(r['forgotten_live'])} -> {_p(r['forgotten_retrain'])}.\nDestroyed "
            f"{len(r['folders_purged'])} earlier weights folder(s), purged {len(r['purged'])} "
            f"artifact(s) (the people's records and rule classifiers); residual scan {scan} "
            f"({coverage_text(r['residual_scan'])}).\nRequests now exact: {covered}; "
            "their forget rules are retired.")


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
