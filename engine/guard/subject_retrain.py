"""The retrain follow-up of a language model this product fine-tuned (docs/design.md
sections 14 and 18).

A request about a person is suppressed at once by their forget rule; the weights still
learned their records. ``retrain_finetuned`` (dispatched by ``engine.retrain.retrain_job``
for a model of kind ``llm`` and training mode ``finetune``) makes every waiting request
exact:

1. fine-tune the base model again, with the live version's settings, on the live
   version's records less every person whose request waits (batched);
2. score both models on the kept people's answers and on the left-out people's (TOFU's
   normalised answer probability), for the record;
3. save the weights, then one transaction (``storage.finetune_retrain``): version v+1
   (exact), every earlier version purged, the people's rules retired, the requests exact;
4. destroy the earlier versions' weights folders, purge the people's records and rule
   classifiers, and scan the workspace for every earlier weight tensor the new weights
   do not also hold (a frozen tensor never learned a person) and the people's records.
Cancel takes effect up to step 3. Killed before the commit, the live version is the old
one (a rerun trains again); killed after it, ``Workspace.open`` finishes the purge and the
scan from fingerprints, as for an image retrain.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from engine.forget import crash_point
from engine.guard.finetune import FinetuneSettings, finetune_job
from engine.guard.jobutil import scaled
from engine.guard.subject_jobs import (
    MODELS_DIR,
    fresh_base,
    next_folder,
    person_of,
    record_line,
    slug,
    subject_records,
    write_weights,
)
from engine.jobs import CancelToken, Progress
from engine.residual_scan import MIN_PATTERN, scan_workspace
from storage import finetunes
from storage.errors import RefusedError
from storage.finetune_retrain import (
    accepted_finetune,
    commit_finetune_retrain,
    hold_finetune,
    registered_folders,
    settle,
)
from storage.post_forget import pending_record, record_checks
from storage.registry import live_version
from storage.residue import fingerprint
from storage.retrain import HELD, check_pending, held_reference
from storage.weights_purge import destroy_folder
from storage.workspace import Workspace

Job = Generator[Progress, None, dict[str, Any]]
PATTERN_CAP = 1 << 16  # bytes of each removed tensor the scan looks for (its first 64 KiB)


def retrain_finetuned(ws: Workspace, model_name: str, operator: str, asked: list[int],
                      cancel: CancelToken | None = None, device: str = "auto") -> Job:
    """Fine-tune ``model_name`` again without every person waiting, and promote it (or
    hold it for a decision; an accepted held retrain is promoted without training)."""
    plan = _plan(ws, model_name, asked)  # refused before any model loads
    yield Progress(0.0, f"retraining for requests {', '.join(map(str, plan['requests']))}")
    if plan["accepted"] is not None:  # it left out the people waiting when it trained
        folder, details = plan["accepted"]["folder"], plan["accepted"]["details"]
        plan["records_artifacts"] = details["left_out"]
        plan["people"] = {person_of(ws, sha) for sha in details["left_out"]}
    records = subject_records(ws, model_name)
    kept = [r for r in records if r.person not in plan["people"]]
    gone = [r for r in records if r.person in plan["people"]]
    if plan["accepted"] is None:
        folder, details = yield from _train(ws, model_name, plan, kept, gone, cancel, device)
        if _held(ws, model_name, plan, folder, details, operator):
            return {"model": model_name, "status": HELD, "kind": "llm",
                    "from_version": plan["version"], "requests": plan["requests"],
                    "train_seconds": details["retrain_seconds"], **_figures(details)}
    yield Progress(0.95, "promoting the retrained weights, purging the earlier")
    out = _promote(ws, model_name, Path(folder), plan, gone, operator, details)
    yield Progress(1.0, f"{model_name} v{out['version']} retrained (exact)")
    return {"model": model_name, "status": "promoted", "kind": "llm",
            "from_version": plan["version"], "requests": plan["requests"],
            "people_left_out": len(plan["people"]), "records": len(kept),
            "train_seconds": details["retrain_seconds"], **_figures(details), **out}


def _train(ws: Workspace, model_name: str, plan: dict[str, Any], kept: list[Any],
           gone: list[Any], cancel: CancelToken | None, device: str
           ) -> Generator[Progress, None, tuple[str, dict[str, Any]]]:
    """Steps 1-3: fine-tune, score beside live, save; returns the folder and the figures."""
    start = time.monotonic()
    lm = yield from fresh_base(plan["base"], device)
    settings = FinetuneSettings(**plan["settings"])
    stats = yield from scaled(finetune_job(lm, kept, settings, cancel), 0.05, 0.8,
                              "fine-tuning without the people's records: ")
    train_seconds = time.monotonic() - start
    yield Progress(0.82, "scoring the retrained model beside the live version")
    figures = _compare(plan["folder"], lm, kept, gone, device)
    if cancel is not None:
        cancel.check()  # the last point where cancel takes effect: nothing promoted yet
    yield Progress(0.9, "saving the retrained weights")
    folder, sha = _save(ws, model_name, lm, plan["version"] + 1)
    return str(folder), {**stats, "embedding_std": round(lm.embedding_std, 6),
                         "weights_sha256": sha, "retrain_seconds": round(train_seconds, 2),
                         "left_out": plan["records_artifacts"], **figures}


def _figures(details: dict[str, Any]) -> dict[str, Any]:
    return {k: details.get(k) for k in ("retained_live", "retained_retrain",
                                        "forgotten_live", "forgotten_retrain", "margin")}


def _held(ws: Workspace, model_name: str, plan: dict[str, Any], folder: str,
          details: dict[str, Any], operator: str) -> bool:
    """More than ``retrain_margin`` below live on the kept people's answers: keep the saved
    weights for an operator's decision (``storage.finetune_retrain.hold_finetune``)."""
    from storage.settings import get_setting

    with ws.sessions.begin() as session:
        details["margin"] = margin = float(get_setting(session, "retrain_margin"))
        live, new = details["retained_live"], details["retained_retrain"]
        if live is None or new is None or new >= live - margin:
            return False
        hold_finetune(session, finetunes.finetuned_model(session, model_name), folder,
                      dict(details), details, operator)
    return True


def _plan(ws: Workspace, model_name: str, asked: list[int]) -> dict[str, Any]:
    """The requests waiting, their people, the live version's settings and base."""
    with ws.sessions() as session:
        model = finetunes.finetuned_model(session, model_name)
        pending = check_pending(session, model, asked)
        live = live_version(session, model)
        metrics = dict(live.metrics)
        artifacts = [r.scope["subject_records"] for r in pending]
        plan = {"requests": [r.id for r in pending], "records_artifacts": artifacts,
                "version": live.number, "folder": metrics["folder"],
                "settings": dict(metrics.get("settings") or {}), "base": _base_spec(metrics),
                "subjects": dict(metrics.get("subjects") or {})}
        if held_reference(session, model) is not None:
            raise RefusedError(f"a retrain of {model_name!r} is held for an operator's "
                               f"decision: `retrain {model_name} --accept | --reject --reason "
                               "TEXT` (or Held retrain… on the Requests screen) first")
        run = accepted_finetune(session, model)
        plan["accepted"] = None if run is None else {"run": run.id, **run.metrics}
    plan["people"] = {person_of(ws, sha) for sha in artifacts}
    return plan


def _base_spec(metrics: dict[str, Any]) -> str | None:
    """What the fine-tune loaded as its base (None: the offline default)."""
    if "base_spec" in metrics:
        return metrics["base_spec"]
    base = str(metrics.get("base") or "")
    return None if not base or base.endswith("(offline)") else base


def _compare(live_folder: str, retrained: Any, kept: list[Any], gone: list[Any],
             device: str) -> dict[str, Any]:
    """Mean normalised answer probability of the live and retrained models, on the kept
    people's records and on the left-out people's."""
    from engine.guard.lm import load_language_model

    live = load_language_model(live_folder, device)
    out = {}
    for name, lm in (("live", live), ("retrain", retrained)):
        out[f"retained_{name}"] = _mean_probability(lm, kept)
        out[f"forgotten_{name}"] = _mean_probability(lm, gone)
    return out


def _mean_probability(lm: Any, records: list[Any]) -> float | None:
    from engine.guard.scoring import answer_scores, normalised_probability

    if not records:
        return None
    scores = answer_scores(lm, [(r.question, r.answer) for r in records])
    return round(sum(normalised_probability(s) for s in scores) / len(scores), 6)


def _promote(ws: Workspace, model_name: str, folder: Path, plan: dict[str, Any],
             gone: list[Any], operator: str, details: dict[str, Any]) -> dict[str, Any]:
    """Commit, destroy the earlier weights, purge, scan (steps 4 and 5)."""
    people = {p: e for p, e in plan["subjects"].items() if p not in plan["people"]}
    patterns = _patterns(ws, plan, folder, gone)
    start = time.perf_counter()
    try:
        crash_point("retrain-before-commit")
        with ws.sessions.begin() as session:
            model = finetunes.finetuned_model(session, model_name)
            new, requests, doomed, folders = commit_finetune_retrain(
                session, model, folder=str(folder), kept=people,
                left_out=plan["records_artifacts"], operator=operator,
                details=_details(plan, details))
            settle(session, (plan["accepted"] or {}).get("run"))
            ws.artifacts.mark_for_purge(session, doomed)
            ids = [r.id for r in requests]
            new.metrics = {**new.metrics, **pending_record(
                [fingerprint(p) for p in patterns], doomed, None, operator, retrain=ids)}
            number, version_id = new.number, new.id
    except BaseException:
        if plan["accepted"] is None:
            destroy_folder(ws.root, folder)  # nothing promoted: the new weights go too
        raise
    crash_point("retrain-after-commit")
    for earlier in folders:
        destroy_folder(ws.root, earlier)
        crash_point("retrain-mid-purge")
    purged = ws.artifacts.purge_marked()
    scan = scan_workspace(ws.root, patterns)
    with ws.sessions.begin() as session:
        from storage.models import ModelVersion

        record_checks(session, session.get(ModelVersion, version_id), purged, scan, None)
    return {"version": number, "covered": ids, "purged": purged, "folders_purged": folders,
            "residual_scan": scan, "promote_ms": (time.perf_counter() - start) * 1000.0,
            "folder": str(folder), "erasure_kind": "exact"}


def _details(plan: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """The new version's metrics: the fine-tune's, its settings and base, the retrain."""
    retrain = {k: details.get(k) for k in ("retained_live", "retained_retrain",
                                           "forgotten_live", "forgotten_retrain")}
    return {**{k: v for k, v in details.items() if k not in retrain},
            "settings": plan["settings"], "base_spec": plan["base"],
            "base": plan["base"] or "SmolLM2-135M-Instruct (offline)",
            "retrain": {**retrain, "from_version": plan["version"],
                        "seconds": details.get("retrain_seconds"),
                        "requests": plan["requests"], "people_left_out": len(plan["people"]),
                        "measure": "mean normalised answer probability"}}


def _save(ws: Workspace, model_name: str, lm: Any, number: int) -> tuple[Path, str]:
    """The retrained weights and tokenizer in ``language-models/NAME/v<number>``; a folder
    of that name left by a retrain killed before its commit is replaced, one the registry
    names (a version's, a held retrain's) never: the next free number then."""
    root = ws.root / MODELS_DIR / slug(model_name)
    folder = root / f"v{number}"
    with ws.sessions() as session:
        taken = registered_folders(session, finetunes.finetuned_model(session, model_name))
    if str(folder) in taken:
        folder = next_folder(root)
    partial = folder.with_name(f".{folder.name}.partial")
    destroy_folder(ws.root, folder)
    shutil.rmtree(partial, ignore_errors=True)
    write_weights(lm, partial)
    partial.rename(folder)
    return folder, hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _patterns(ws: Workspace, plan: dict[str, Any], folder: Path,
              gone: list[Any]) -> list[bytes]:
    """What no workspace file may hold afterwards: every tensor of the earlier versions'
    weights that the new weights do not hold byte for byte (its first 64 KiB), and each
    left-out record as stored."""
    staying = {hashlib.sha256(t).digest() for t in _tensors(folder)}
    out = []
    for earlier in _earlier_folders(ws, plan["folder"]):
        out += [t[:PATTERN_CAP] for t in _tensors(earlier)
                if hashlib.sha256(t).digest() not in staying and len(set(t[:64])) > 1]
    out += [record_line(r).encode() for r in gone]
    return [p for p in dict.fromkeys(out) if len(p) >= MIN_PATTERN]


def _earlier_folders(ws: Workspace, live_folder: str) -> list[Path]:
    root = Path(live_folder).parent
    return [p for p in sorted(root.glob("v*")) if p.is_dir()] if root.is_dir() else []


def _tensors(folder: Path) -> list[bytes]:
    """The raw bytes of every tensor of the safetensors files in ``folder``."""
    import json
    import struct

    out = []
    for path in sorted(folder.glob("*.safetensors")):
        with open(path, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            header = json.loads(handle.read(size))
            base = 8 + size
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                begin, end = entry["data_offsets"]
                handle.seek(base + begin)
                out.append(handle.read(end - begin))
    return out
