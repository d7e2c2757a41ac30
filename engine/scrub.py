"""Post-forget scrub for ``lora`` and ``full`` models (approximate erasure, issue 9).

Forgetting deletes a class's prompt, head row and adapter, but the shared weights
(LoRA adapters or the whole backbone) learned from that class too, and a relearn
attack finds it again faster than on a model that never saw it. The scrub is a short
fine-tune of exactly those shared weights with the training objective (two-pass, see
``engine.objective``) on the retained classes' training data only: the forgotten
classes are absent, so every step moves the shared weights towards what retraining
without them would give. The class artifacts stay frozen, so they keep their bytes.

The result becomes a new version through the same crash-safe path as a forget:
1. a new shared artifact (the class artifacts are unchanged);
2. one transaction: version v+1 (erasure "approximate"), every earlier version holding
   the pre-scrub shared weights marked purged, that artifact marked for purging, the
   request's result and the audit-log entries;
3. purge (overwrite, delete, tombstone); interrupted purges resume at start-up;
4. residual scan for the bytes of every shared tensor the scrub changed;
5. evaluate the reloaded version.
It never makes erasure exact: the figures that say how much is left come from ``audit``.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, Progress
from engine.model_store import (
    blob_hashes,
    image_model,
    load_live,
    load_version,
    model_blobs,
    refuse_forgotten_since,
    store_blobs,
)
from engine.residual_scan import MIN_PATTERN, scan_workspace
from storage import auditlog
from storage import requests as reqs
from storage.erasure_kinds import APPROXIMATE, version_kind
from storage.errors import RefusedError, UnpromptError
from storage.models import ModelVersion
from storage.registry import live_version
from storage.workspace import Workspace

DEFAULT_STEPS = 200
MAX_STEPS = 100_000


def scrub_job(workspace: str | Path, *, model_name: str, operator: str,
              steps: int = DEFAULT_STEPS, request: int | str | None = None, seed: int = 0,
              device: str = "auto", cancel: CancelToken | None = None
              ) -> Generator[Progress, None, dict[str, Any]]:
    """Fine-tune ``model_name``'s shared weights on its retained classes; new version."""
    ws = Workspace.open(workspace)
    try:
        result = yield from scrub_in(ws, model_name=model_name, operator=operator,
                                     steps=steps, request=request, seed=seed, device=device,
                                     cancel=cancel)
        return result
    finally:
        ws.close()


def scrub_in(ws: Workspace, *, model_name: str, operator: str, steps: int = DEFAULT_STEPS,
             request: int | str | None = None, seed: int = 0, device: str = "auto",
             cancel: CancelToken | None = None) -> Generator[Progress, None, dict[str, Any]]:
    """``scrub_job`` in an open workspace (``forget_job`` calls it after a forget)."""
    from engine.image_jobs import accuracy_report

    check_scrubbable(ws, model_name, steps)
    model, info = load_live(ws, model_name)
    before = accuracy_report(model, info, forgotten=_forgotten(info, model))
    yield Progress(0.0, f"scrubbing the shared weights ({steps} steps)")
    start = time.perf_counter()
    trained = yield from _fine_tune(model, info, steps, seed, device, cancel)
    fit_seconds = time.perf_counter() - start
    yield Progress(0.9, "storing the scrubbed version and purging the old weights")
    refuse_forgotten_since(ws, model_name, list(model.class_ids), "the scrub")
    record = _commit(ws, model, info, operator, request, trained)
    seconds = time.perf_counter() - start
    after = _evaluate_after(ws, model_name, info)
    scrub = {"steps": steps, "seconds": seconds, "fit_seconds": fit_seconds,
             "tensors_changed": len(trained["changed"]), "lr": trained["lr"],
             "objective": "two-pass objective on retained classes, shared weights only",
             "retained_before": before["retained"], "retained_after": after["retained"]}
    _record_request(ws, request, operator, scrub, record)
    return {"model": model_name, **record, "scrub": scrub, "erasure_kind": APPROXIMATE,
            "accuracy_before": before, "accuracy_after": after}


def check_scrubbable(ws: Workspace, model_name: str, steps: int,
                     forgetting: bool = False) -> None:
    """Refuse, before anything changes, what a scrub cannot help (``forgetting``: the
    forget about to run supplies the forgotten class)."""
    if not 1 <= int(steps) <= MAX_STEPS:
        raise UnpromptError(f"scrub steps must be between 1 and {MAX_STEPS}, not {steps}")
    with ws.sessions() as session:
        model = image_model(session, model_name)
        kind = version_kind(model, live_version(session, model))
        mode = model.training_mode
        forgotten = [c for c in model.classes if c.status == "forgotten"]
    if kind != APPROXIMATE or mode not in ("lora", "full"):
        raise RefusedError(
            f"model {model_name!r} ({mode} mode, {kind} erasure) has no shared weight that "
            "learned from the forgotten classes, so there is nothing to scrub")
    if not forgotten and not forgetting:
        raise RefusedError(f"model {model_name!r} has no forgotten class; nothing to scrub")


def _forgotten(info: dict[str, Any], model: Any) -> list[int]:
    return sorted(set(info["class_names"]) - set(model.class_ids))


def _fine_tune(model: Any, info: dict[str, Any], steps: int, seed: int, device: str,
               cancel: CancelToken | None) -> Generator[Progress, None, dict[str, Any]]:
    """``steps`` batches of the training objective on retained data; shared weights only."""
    import torch

    from engine.device import resolve_device
    from engine.image_jobs import cached_reference
    from engine.objective import fit, two_pass_loss

    cfg = info["config"]
    dev = resolve_device(device)
    x, y = _retained_batches(cached_reference(info["dataset"]), model.class_ids, steps,
                             int(cfg.get("batch_size", 64)), seed)
    old = _shared_state(model)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(dev).train()
    params = _shared_parameters(model)  # batches move to the device in fit

    def step(xb: torch.Tensor, yb: torch.Tensor):
        return two_pass_loss(model, xb, model.columns(yb), gen)

    lr = float(cfg.get("lr", 1e-3))
    opts = {"epochs": 1, "batch_size": int(cfg.get("batch_size", 64)), "lr": lr,
            "weight_decay": float(cfg.get("weight_decay", 0.0)), "warmup": 0.1,
            "augment": int(cfg.get("augment", 0))}
    yield from fit(step, params, x, y, opts, gen, cancel, "scrub")
    model.cpu().eval()
    new = _shared_state(model)
    changed = [k for k in old if not torch.equal(old[k], new[k])]
    return {"changed": changed, "old": old, "lr": lr}


def _retained_batches(data: Any, class_ids: list[int], steps: int, batch: int,
                      seed: int) -> tuple[Any, Any]:
    """``steps * batch`` seeded train samples of the retained classes (repeated as needed)."""
    import torch

    keep = torch.isin(data.train_y, torch.tensor(class_ids, dtype=data.train_y.dtype))
    idx = torch.nonzero(keep).flatten()
    if len(idx) == 0:
        raise UnpromptError("the model's recorded data has no sample of a retained class")
    gen = torch.Generator().manual_seed(seed)
    need, parts = steps * batch, []
    while sum(len(p) for p in parts) < need:
        parts.append(idx[torch.randperm(len(idx), generator=gen)])
    picked = torch.cat(parts)[:need]
    return data.train_x[picked], data.train_y[picked]


def _shared_parameters(model: Any) -> list[tuple[str, Any]]:
    """The shared weights the training mode trains (LoRA adapters or the backbone)."""
    model.set_trainable()
    for store in (model.prompts, model.heads, model.deep):
        for param in store.values():
            param.requires_grad_(False)  # class artifacts keep their bytes
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise RefusedError("this model has no shared trainable weight; nothing to scrub")
    return params


def _shared_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}


def _fingerprints(old: dict[str, Any], changed: list[str]) -> list[bytes]:
    """The pre-scrub bytes of every changed shared tensor (what the residual scan seeks)."""
    out = []
    for key in changed:
        data = old[key].contiguous().numpy().tobytes()
        if len(data) >= MIN_PATTERN:
            out.append(data)
    return out


def _commit(ws: Workspace, model: Any, info: dict[str, Any], operator: str,
            request: int | str | None, trained: dict[str, Any]) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; returns version, purge and scan figures."""
    from engine.forget import crash_point

    blobs = model_blobs(model)
    shared, classes = blob_hashes(blobs)
    with ws.sessions() as session:  # refuse before a byte is stored
        _check_same_classes(live_version(session, image_model(session, info["model"])),
                            classes, shared)
    store_blobs(ws, blobs)
    with ws.sessions.begin() as session:
        row = image_model(session, info["model"])
        old = live_version(session, row)
        _check_same_classes(old, classes, shared)
        new = _new_version(session, row, old, shared, operator, request, trained)
        doomed = [old.shared_artifact] if not _shared_elsewhere(session, old, row) else []
        ws.artifacts.mark_for_purge(session, doomed)
        number, from_number = new.number, old.number
    crash_point("scrub-after-commit")
    purged = ws.artifacts.purge_marked()
    scan = scan_workspace(ws.root, _fingerprints(trained["old"], trained["changed"]))
    return {"version": number, "from_version": from_number, "purged": purged,
            "residual_scan": scan}


def _check_same_classes(old: ModelVersion, classes: dict[int, str], shared: str) -> None:
    if shared == old.shared_artifact:
        raise UnpromptError("the scrub did not change the shared weights; nothing was stored")
    if {str(k): v for k, v in classes.items()} != dict(old.class_artifacts):
        raise UnpromptError("the scrub changed class artifacts it must leave alone; "
                            "nothing was registered")


def _new_version(session: Any, row: Any, old: ModelVersion, shared: str, operator: str,
                 request: int | str | None, trained: dict[str, Any]) -> ModelVersion:
    new = ModelVersion(model_id=row.id, number=old.number + 1, parent_id=old.id,
                       shared_artifact=shared, class_artifacts=dict(old.class_artifacts),
                       erasure_kind=APPROXIMATE,
                       metrics={**old.metrics,
                                "scrub": {"tensors_changed": len(trained["changed"])}})
    session.add(new)
    for version in row.versions:  # nothing that holds the pre-scrub weights may load again
        if version is not new and version.shared_artifact == old.shared_artifact:
            version.status = "purged"
    session.flush()
    auditlog.append(session, operator, "model.scrubbed", {
        "model": row.name, "from_version": old.number, "to_version": new.number,
        "old_shared_artifact": old.shared_artifact, "new_shared_artifact": shared,
        "request": request, "erasure_kind": APPROXIMATE})
    return new


def _shared_elsewhere(session: Any, old: ModelVersion, row: Any) -> bool:
    """Another model's live version with the very same bytes (identical training)."""
    others = session.query(ModelVersion).filter(ModelVersion.model_id != row.id,
                                                ModelVersion.status != "purged")
    return any(v.shared_artifact == old.shared_artifact for v in others)


def _record_request(ws: Workspace, request: int | str | None, operator: str,
                    scrub: dict[str, Any], record: dict[str, Any]) -> None:
    """The request was executed by the forget; it keeps the scrub's cost and checks."""
    if request is None:
        return
    with ws.sessions.begin() as session:
        row = reqs.get_request(session, request)
        row.erasure_kind = APPROXIMATE
        row.result = {**row.result, "version": record["version"],
                      "scrub": {**scrub, "from_version": record["from_version"],
                                "purged": record["purged"],
                                "residual_scan": record["residual_scan"]}}
        auditlog.append(session, operator, "request.scrubbed",
                        {"request": row.id, "version": record["version"],
                         "steps": scrub["steps"], "clean": record["residual_scan"]["clean"]})


def _evaluate_after(ws: Workspace, model_name: str, info: dict[str, Any]) -> dict[str, Any]:
    from engine.image_jobs import accuracy_report

    with ws.sessions() as session:
        version = live_version(session, image_model(session, model_name))
        model = load_version(ws, version)
    return accuracy_report(model, info, forgotten=_forgotten(info, model))
