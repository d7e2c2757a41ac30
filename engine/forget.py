"""Forgetting classes: the five steps of docs/design.md section 4, crash-safe.

1. a new version whose artifact list excludes the forgotten classes' artifacts (their
   prompt tokens, head rows and adapters); the shared artifact is never rewritten;
2. one transaction: version v+1, classes forgotten, request executed, purges marked,
   audit-log entries;
3. purge every artifact that holds the classes' tensors (overwrite, delete, tombstone),
   the retrain references that learned them included (``engine.forget_plan``);
4. residual scan: no workspace file holds the bytes of a removed tensor;
5. evaluate: per-class accuracy; a forgotten class can no longer be predicted at all.
A crash before step 2 commits leaves version v; after it, version v+1 with its purges
marked and the fingerprints of the removed tensors, from which ``Workspace.open``
finishes the purge, the scan and its record (``storage.post_forget``); the next job on
the model measures step 5 (``engine.image_jobs.finish_evaluation``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.audit.statement import forget_statement
from engine.forget_plan import make_plan
from engine.image_jobs import accuracy_report, finish_evaluation, record_accuracy_after
from engine.jobs import CancelToken, Progress
from engine.model_store import image_model, load_live, load_version
from engine.residual_scan import scan_workspace
from engine.scrub import check_scrubbable, scrub_in
from storage import requests as reqs
from storage.audits import retire_learned
from storage.erasure_kinds import APPROXIMATE
from storage.models import ModelVersion
from storage.post_forget import pending_record, record_checks
from storage.registry import live_version
from storage.versions import classes_to_forget, commit_forget, mark_unloadable
from storage.workspace import Workspace

CRASH_ENV = "UNPROMPT_CRASH_AT"  # fault injection for the crash-safety tests


def crash_point(step: str) -> None:
    """Die here, as a power cut would, when the crash-safety tests ask for it."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(137)


def forget_job(workspace: str | Path, *, model_name: str, classes: list[str], operator: str,
               request: int | str | None = None, scrub: int | None = None,
               also_shared: bool = False, cancel: CancelToken | None = None
               ) -> Generator[Progress, None, dict[str, Any]]:
    """Forget ``classes`` of ``model_name``; returns the figures of the CLI contract.

    ``scrub`` (steps) then fine-tunes the shared weights of a ``lora`` / ``full`` model on
    the retained classes (``engine.scrub``); models with no such shared weight refuse it.
    ``also_shared`` forgets the same class bytes from every other model that holds them
    (models trained alike); without it such a forget is refused."""
    ws = Workspace.open(workspace)
    try:
        finish_evaluation(ws, model_name)
        yield Progress(0.0, "checking the request and the classes")
        plan = make_plan(ws, model_name, classes, request, also_shared)
        if scrub is not None:
            check_scrubbable(ws, model_name, scrub, forgetting=True)
        model, info = load_live(ws, model_name)
        yield Progress(0.1, "measuring accuracy before")
        before = accuracy_report(model, info)
        if cancel is not None:
            cancel.check()  # the last point where cancel takes effect: nothing changed yet
        yield Progress(0.4, "forgetting")
        result = _execute(ws, {**plan, "accuracy_before": before}, operator)
        yield Progress(0.7 if scrub is None else 0.5, "measuring accuracy after")
        after = _evaluate_after(ws, model_name, info, plan["labels"])
        record_accuracy_after(ws, model_name, result["version"], after)
        out = {"model": model_name, **result, "accuracy_before": before,
               "accuracy_after": after, "forgotten": plan["names"]}
        if scrub is not None:
            out = yield from _scrub_after(ws, out, operator, scrub, request, cancel)
        out["erasure_statement"] = forget_statement(out["erasure_kind"], info["mode"],
                                                    plan["names"], out.get("scrub"))
        return out
    finally:
        ws.close()


def _scrub_after(ws: Workspace, out: dict[str, Any], operator: str, steps: int,
                 request: Any, cancel: CancelToken | None
                 ) -> Generator[Progress, None, dict[str, Any]]:
    """Scrub the new version; the forget's own figures stay, the scrub's join them."""
    yield Progress(0.6, "scrubbing the shared weights")
    scrubbed = yield from scrub_in(ws, model_name=out["model"], operator=operator,
                                   steps=steps, request=request, cancel=cancel)
    scrub = {**scrubbed["scrub"], "from_version": scrubbed["from_version"],
             "version": scrubbed["version"], "purged": scrubbed["purged"],
             "residual_scan": scrubbed["residual_scan"]}
    return {**out, "version": scrubbed["version"], "accuracy_after": scrubbed["accuracy_after"],
            "accuracy_after_forget": out["accuracy_after"], "scrub": scrub,
            "erasure_kind": APPROXIMATE}


def _execute(ws: Workspace, plan: dict[str, Any], operator: str) -> dict[str, Any]:
    """Steps 1-4, timed: the figure an operator waits for."""
    start = time.perf_counter()
    crash_point("before-commit")
    with ws.sessions.begin() as session:
        new, purge, also = _commit(session, ws, plan, operator)
        number, version_id = new.number, new.id
    crash_point("after-commit")
    purged = ws.artifacts.purge_marked(after_each=lambda _sha: crash_point("mid-purge"))
    crash_point("after-purge")
    scan = scan_workspace(ws.root, plan["patterns"])
    latency = (time.perf_counter() - start) * 1000.0
    with ws.sessions.begin() as session:
        record_checks(session, session.get(ModelVersion, version_id), purged, scan, latency)
    return {"version": number, "from_version": number - 1, "latency_ms": latency,
            "purged": purged, "residual_scan": scan, "erasure_kind": plan["erasure_kind"],
            "also_forgotten": also, "references_retired": purge["references"]}


def _commit(session: Session, ws: Workspace, plan: dict[str, Any], operator: str
            ) -> tuple[ModelVersion, dict[str, Any], list[dict[str, Any]]]:
    """Step 2: one transaction for every model that holds the bytes, the references
    that learned the classes, the purge marks and what a resumed forget needs."""
    model = image_model(session, plan["model"])
    request = reqs.get_request(session, plan["request"], lock=True) if plan["request"] else None
    # checked again at commit: a forget interleaved with this one (a forget with a scrub
    # is a long job) may have forgotten them or the others meanwhile
    entries = classes_to_forget(model, plan["names"])
    new, removed = commit_forget(session, model, entries, operator, request,
                                 {"accuracy_before": plan["accuracy_before"]})
    also = []
    for name, labels in plan["also"].items():
        other = image_model(session, name)
        version, more = commit_forget(session, other, _entries(other, labels), operator, None, {})
        removed += more
        also.append({"model": name, "version": version.number, "classes": labels})
    mark_unloadable(session, removed)
    retired, doomed = retire_learned(session, [model.name, *plan["also"]], removed, operator)
    purge = list(dict.fromkeys(removed + doomed))
    ws.artifacts.mark_for_purge(session, purge)
    new.metrics = {**new.metrics, **pending_record(plan["fingerprints"], purge,
                                                   request.id if request else None, operator)}
    if request is not None:
        reqs.mark_executed(session, request, operator, new.erasure_kind,
                           {"version": new.number, "classes": plan["names"],
                            "also_forgotten": also, "references_retired": retired})
    return new, {"artifacts": purge, "references": retired}, also


def _entries(model: Any, labels: list[int]) -> list[Any]:
    return [c for c in model.classes if c.label_index in labels]


def _evaluate_after(ws: Workspace, model_name: str, info: dict[str, Any],
                    labels: list[int]) -> dict[str, Any]:
    """Step 5: reload v+1 from its artifacts (proving it loads) and measure it."""
    with ws.sessions() as session:
        version = live_version(session, image_model(session, model_name))
        model = load_version(ws, version)
    return accuracy_report(model, info, forgotten=labels)
