"""Forgetting classes: the five steps of DESIGN.md section 4, crash-safe.

1. a new version whose artifact list excludes the forgotten classes' artifacts (their
   prompt tokens, head rows and adapters); the shared artifact is never rewritten;
2. one transaction: version v+1, classes forgotten, request executed, purges marked,
   audit-log entries;
3. purge every artifact that holds the classes' tensors (overwrite, delete, tombstone);
4. residual scan: no workspace file holds the bytes of a removed tensor;
5. evaluate: per-class accuracy; a forgotten class can no longer be predicted at all.
A crash before step 2 commits leaves version v; after it, version v+1 with its purges
marked, which ``Workspace.open`` finishes (``ArtifactStore.resume_purges``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from engine.audit.statement import forget_statement
from engine.image_jobs import accuracy_report
from engine.jobs import CancelToken, Progress
from engine.model_store import image_model, load_live, load_version
from engine.residual_scan import scan_workspace
from engine.scrub import check_scrubbable, scrub_in
from storage import auditlog
from storage import requests as reqs
from storage.errors import UnpromptError
from storage.registry import live_version
from storage.versions import classes_to_forget, commit_forget
from storage.workspace import Workspace

CRASH_ENV = "UNPROMPT_CRASH_AT"  # fault injection for the crash-safety tests


def crash_point(step: str) -> None:
    """Die here, as a power cut would, when the crash-safety tests ask for it."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(137)


def forget_job(workspace: str | Path, *, model_name: str, classes: list[str], operator: str,
               request: int | str | None = None, scrub: int | None = None,
               cancel: CancelToken | None = None
               ) -> Generator[Progress, None, dict[str, Any]]:
    """Forget ``classes`` of ``model_name``; returns the figures of the CLI contract.

    ``scrub`` (steps) then fine-tunes the shared weights of a ``lora`` / ``full`` model on
    the retained classes (``engine.scrub``); exact-by-construction models refuse it."""
    ws = Workspace.open(workspace)
    try:
        yield Progress(0.0, "checking the request and the classes")
        plan = _plan(ws, model_name, classes, request)
        if scrub is not None:
            check_scrubbable(ws, model_name, scrub, forgetting=True)
        model, info = load_live(ws, model_name)
        yield Progress(0.1, "measuring accuracy before")
        before = accuracy_report(model, info)
        if cancel is not None:
            cancel.check()  # the last point where cancel takes effect: nothing changed yet
        yield Progress(0.4, "forgetting")
        result = _execute(ws, plan, operator)
        yield Progress(0.7 if scrub is None else 0.5, "measuring accuracy after")
        after = _evaluate_after(ws, model_name, info, plan["labels"])
        _record_version(ws, model_name, result, before, after)
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
            "erasure_kind": "approximate"}


def _plan(ws: Workspace, model_name: str, keys: list[str], request_id: Any) -> dict[str, Any]:
    """Resolve and refuse before anything changes; read the bytes the scan looks for."""
    from engine.serialize import class_tensor_fingerprints

    with ws.sessions() as session:
        model = image_model(session, model_name)
        entries = classes_to_forget(model, keys)
        if request_id is not None:
            _check_request_scope(session, request_id, model_name, entries)
        version = live_version(session, model)
        labels = sorted(e.label_index for e in entries)
        shas = [version.class_artifacts[str(k)] for k in labels]
        plan = {"model": model_name, "labels": labels, "names": [e.display_name for e in entries],
                "request": request_id, "from_version": version.number,
                "erasure_kind": version.erasure_kind}
    fingerprints = [fp for sha in shas for fp in class_tensor_fingerprints(ws.artifacts.get(sha))]
    return {**plan, "fingerprints": fingerprints}


def _check_request_scope(session: Any, request_id: Any, model_name: str, entries: list) -> None:
    request = reqs.get_request(session, request_id)
    reqs.check_executable(session, request, "classes")
    scoped = {c["index"] for c in request.scope.get("classes", [])}
    asked = {e.label_index for e in entries}
    if request.scope.get("model") != model_name or scoped != asked:
        raise UnpromptError(f"request {request.id} covers {request.scope.get('model')} classes "
                            f"{sorted(scoped)}, not {model_name} classes {sorted(asked)}")


def _execute(ws: Workspace, plan: dict[str, Any], operator: str) -> dict[str, Any]:
    """Steps 1-4, timed: the figure an operator waits for."""
    start = time.perf_counter()
    crash_point("before-commit")
    with ws.sessions.begin() as session:
        model = image_model(session, plan["model"])
        request = reqs.get_request(session, plan["request"]) if plan["request"] else None
        # checked again at commit: a forget interleaved with this one (a forget with a
        # scrub is a long job) may have forgotten them or the others meanwhile
        entries = classes_to_forget(model, plan["names"])
        new, removed = commit_forget(session, model, entries, operator, request, {})
        ws.artifacts.mark_for_purge(session, removed)
        if request is not None:
            reqs.mark_executed(session, request, operator, new.erasure_kind or "approximate",
                               {"version": new.number, "classes": plan["names"]})
        number = new.number
    crash_point("after-commit")
    purged = ws.artifacts.purge_marked(after_each=lambda _sha: crash_point("mid-purge"))
    crash_point("after-purge")
    scan = scan_workspace(ws.root, plan["fingerprints"])
    latency = (time.perf_counter() - start) * 1000.0
    if plan["request"]:
        _record_checks(ws, plan["request"], operator, purged, scan)
    return {"version": number, "from_version": number - 1, "latency_ms": latency,
            "purged": purged, "residual_scan": scan, "erasure_kind": plan["erasure_kind"]}


def _record_checks(ws: Workspace, request_id: Any, operator: str, purged: list[str],
                   scan: dict[str, Any]) -> None:
    """Keep the purge and residual-scan results with the request (its certificate quotes
    them; the removed bytes are gone, so the scan cannot be repeated later)."""
    with ws.sessions.begin() as session:
        request = reqs.get_request(session, request_id)
        request.result = {**request.result, "purged": purged, "residual_scan": scan}
        auditlog.append(session, operator, "request.erasure_checked",
                        {"request": request.id, "purged": purged, "clean": scan["clean"],
                         "files_scanned": scan["files_scanned"]})


def _record_version(ws: Workspace, model_name: str, result: dict[str, Any],
                    before: dict[str, Any], after: dict[str, Any]) -> None:
    """Keep the forget's latency and accuracy with v+1 (audits quote them later, when
    the purged versions can no longer be loaded)."""
    with ws.sessions.begin() as session:
        model = image_model(session, model_name)
        version = next(v for v in model.versions if v.number == result["version"])
        version.metrics = {**version.metrics, "latency_ms": result["latency_ms"],
                           "accuracy_before": before, "accuracy_after": after}


def _evaluate_after(ws: Workspace, model_name: str, info: dict[str, Any],
                    labels: list[int]) -> dict[str, Any]:
    """Step 5: reload v+1 from its artifacts (proving it loads) and measure it."""
    with ws.sessions() as session:
        version = live_version(session, image_model(session, model_name))
        model = load_version(ws, version)
    return accuracy_report(model, info, forgotten=labels)
