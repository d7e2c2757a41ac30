"""The retrain follow-up: every erasure request ends exact (docs/design.md section 18).

A forget on a ``full`` / ``lora`` model is prompt deletion: the class is unreachable at
once (the request is *suppressed*), but shared weights learned from it. ``retrain_job``
then rebuilds the same configuration from its non-erasable starting point (the
registered backbone it was trained from, or the same random / hub / file start) on the
recorded data without every forgotten class. That model is the retrain reference
itself (``engine.audit.reference``: same code, same cache key, so an audit afterwards
compares the live version with the very same bytes). Then:

1. evaluate it beside the live version; more than ``retrain_margin`` below it, it waits
   for an operator's signed decision (``storage.retrain.decide``);
2. one transaction: version v+1 (exact) made of the reference's artifacts, every earlier
   version purged and its artifacts marked for purging, stale references retired, every
   pending request on the model marked exact (batched), the audit-log entries;
3. purge (overwrite, delete, tombstone);
4. residual scan of the whole workspace for every tensor of the purged artifacts.
Killed before step 2 commits: the live version is the old one, the stored reference is a
valid cache entry and a rerun promotes it. Killed after: the new version is complete and
``Workspace.open`` finishes the purge and scan (``storage.post_forget``). Cancel takes
effect up to step 2, never after.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, Progress
from storage import retrain as rt
from storage.errors import RefusedError
from storage.models import AuditRun, ModelVersion
from storage.registry import get_model
from storage.settings import get_setting
from storage.workspace import Workspace


def retrain_job(workspace: str | Path, *, model_name: str, operator: str,
                requests: list[int] | None = None, device: str = "auto",
                cancel: CancelToken | None = None
                ) -> Generator[Progress, None, dict[str, Any]]:
    """Retrain ``model_name`` without what its requests erased and promote it (see above).

    Dispatches on what the model is: an image model is retrained without its forgotten
    classes; a language model this product fine-tuned is fine-tuned again from its base
    without the people whose requests wait (``engine.guard.subject_retrain``); any other
    model is refused with the reason. ``device`` applies to the language model."""
    ws = Workspace.open(workspace)
    try:
        asked = [int(r) for r in requests or []]
        kind = _model_kind(ws, model_name)
        if kind == "finetuned-llm":
            from engine.guard.subject_retrain import retrain_finetuned

            return (yield from retrain_finetuned(ws, model_name, operator, asked, cancel,
                                                 device))
        if kind != "image":
            raise RefusedError(
                f"model {model_name!r} is a {kind} model that this product did not fine-tune: "
                "its forget rules guard it at inference and there are no records of its "
                "training to retrain without; a retrain exists for image models and for "
                "language models fine-tuned here (`lm finetune`)")
        return (yield from _retrain_image(ws, model_name, operator, asked, cancel))
    finally:
        ws.close()


def _model_kind(ws: Workspace, model_name: str) -> str:
    """``image``, ``finetuned-llm`` or the model's kind."""
    from storage.finetunes import FINETUNED

    with ws.sessions() as session:
        model = get_model(session, model_name)
        if model.kind == "llm" and model.training_mode == FINETUNED:
            return "finetuned-llm"
        return model.kind


def _retrain_image(ws: Workspace, model_name: str, operator: str, asked: list[int],
                   cancel: CancelToken | None) -> Generator[Progress, None, dict[str, Any]]:
    from engine.audit.facts import registry_facts
    from engine.audit.reference import reference_job, retire_stale
    from engine.audit.stages import scaled
    from engine.image_jobs import cached_reference, finish_evaluation

    finish_evaluation(ws, model_name)
    plan = _plan(ws, model_name, asked)  # refused before any progress is shown
    retire_stale(ws, model_name, operator)  # references that learned a class since forgotten
    yield Progress(0.0, f"retraining for requests {', '.join(map(str, plan['requests']))}")
    facts = registry_facts(ws, model_name)
    dataset = cached_reference(facts_dataset(ws, model_name))
    _refuse_learned_later(facts, dataset)
    facts["forgotten"] = [c for c in facts["forgotten"] if c in dataset.class_ids]
    start = time.monotonic()
    job = reference_job(ws, facts, dataset, operator, cancel)
    model, ref = yield from scaled(job, 0.02, 0.85, "retraining without the forgotten classes")
    train_seconds = time.monotonic() - start
    yield Progress(0.9, "evaluating the retrained model beside the live version")
    figures = _compare(ws, model_name, model, facts, ref)
    if cancel is not None:
        cancel.check()  # the last point where cancel takes effect: nothing promoted yet
    if _held(ws, ref["audit_run"], figures, operator):
        return {"model": model_name, "status": rt.HELD, **figures,
                "requests": plan["requests"], "reference_run": ref["audit_run"],
                "train_seconds": train_seconds, "cached": ref["cached"]}
    yield Progress(0.95, "promoting the retrained version and purging the earlier ones")
    from engine.retrain_promote import promote

    out = promote(ws, model_name, ref["audit_run"], plan["requests"], operator,
                  {**figures, "train_seconds": train_seconds, "cached": ref["cached"],
                   "before": facts["before"]})
    return {"model": model_name, "status": "promoted", **figures, **out,
            "requests": plan["requests"], "reference_run": ref["audit_run"],
            "train_seconds": train_seconds, "cached": ref["cached"]}


def _plan(ws: Workspace, model_name: str, asked: list[int]) -> dict[str, Any]:
    """Refuse before any training: no pending request, a named request not pending,
    bytes another model still serves."""
    with ws.sessions() as session:
        model = get_model(session, model_name)
        pending = rt.check_pending(session, model, asked)
        rt.refuse_shared(session, model)
        return {"requests": [r.id for r in pending]}


def facts_dataset(ws: Workspace, model_name: str) -> dict[str, Any]:
    with ws.sessions() as session:
        return dict(get_model(session, model_name).dataset_ref)


def _refuse_learned_later(facts: dict[str, Any], dataset: Any) -> None:
    """A class added by ``learn`` has no images in the recorded data: a retrain would drop it."""
    extra = sorted(set(facts["names"]) - set(dataset.class_ids) - set(facts["forgotten"]))
    if extra:
        names = ", ".join(repr(facts["names"][c]) for c in extra)
        raise RefusedError(f"model {facts['model']!r} learned {names} after training; its "
                           "images are not in the recorded data, so a retrain would lose it")


def _compare(ws: Workspace, model_name: str, retrained: Any, facts: dict[str, Any],
             ref: dict[str, Any]) -> dict[str, Any]:
    """Accuracy of the live version and of the retrained model on the same test split."""
    from engine.image_jobs import accuracy_report
    from engine.model_store import load_live

    live, info = load_live(ws, model_name)
    live_acc = accuracy_report(live, info, forgotten=facts["forgotten"])
    new_acc = accuracy_report(retrained, info, forgotten=facts["forgotten"])
    with ws.sessions() as session:
        margin = float(get_setting(session, "retrain_margin"))
    return {"from_version": facts["version"], "margin": margin,
            "retained_live": live_acc["retained"], "retained_retrain": new_acc["retained"],
            "accuracy_live": live_acc, "accuracy_retrain": new_acc}


def _held(ws: Workspace, reference_run: int, figures: dict[str, Any], operator: str) -> bool:
    """Whether the retrain waits for an operator (too far below live, not yet accepted)."""
    below = figures["retained_retrain"] < figures["retained_live"] - figures["margin"]
    with ws.sessions.begin() as session:
        run = session.get(AuditRun, reference_run)
        status = (run.metrics.get("retrain") or {}).get("status")
        if not below or status == rt.ACCEPTED:
            return False
        if status != rt.HELD:
            rt.hold(session, run, operator, {"model": _name(session, run), **{
                k: figures[k] for k in ("from_version", "margin", "retained_live",
                                        "retained_retrain")}})
    return True


def _name(session: Any, run: AuditRun) -> str:
    return session.get(ModelVersion, run.version_id).model.name


def decide_retrain(workspace: str | Path, *, model_name: str, operator: str,
                   passphrase: str | None, accept: bool, reason: str) -> dict[str, Any]:
    """An operator's signed decision on the retrain of ``model_name`` held for accuracy."""
    ws = Workspace.open(workspace)
    try:
        with ws.sessions.begin() as session:
            decided = rt.decide_held(session, get_model(session, model_name), operator,
                                     passphrase, accept, reason)
        finish_decision(ws)
        return decided
    finally:
        ws.close()


def finish_decision(ws: Workspace) -> list[str]:
    """After a decision on a held retrain: a rejected fine-tune's weights folder is destroyed
    (killed first, ``Workspace.open`` does it). Returns the folders destroyed."""
    from engine.forget import crash_point
    from storage.weights_purge import destroy_rejected

    crash_point("retrain-rejected-before-cleanup")
    return destroy_rejected(ws.root, ws.sessions)


def held_reference(session: Any, model_name: str) -> AuditRun | None:
    """The stored reference of ``model_name`` whose retrain waits for a decision."""
    return rt.held_reference(session, get_model(session, model_name))
