"""Re-derivation: does the served model hold what its recipe gives? (docs/design.md 12)

For an independent model, each remaining class's tensors are derived again from the
served shared artifact (backbone and non-erasable pool), the recorded recipe and split
(each class's images chosen with its own seed) and compared byte for byte with the
class artifact the registry serves. On the machine that trained the model the bytes must
be identical; elsewhere (another torch version, CPU or thread count) they may differ in
the last bits, so there a class passes within ``TOLERANCE`` and the result says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from storage.errors import RefusedError, UnpromptError
from storage.workspace import Workspace

TOLERANCE = 1e-6  # largest absolute difference accepted across environments


def refuse_other_mode(mode: str | None, model_name: str) -> None:
    """Only an independent model's classes are a function of their own data."""
    if mode != "independent":
        raise RefusedError(f"--rederive needs a model trained in independent mode; "
                           f"{model_name!r} is a {mode or 'unknown'}-mode model, whose class "
                           "parameters depend on each other and cannot be re-derived one by one")


def pick_classes(class_ids: list[int], count: int | None, seed: int) -> list[int]:
    """All classes, or ``count`` of them drawn with the audit's seed."""
    if count is not None and count < 0:
        raise UnpromptError("--rederive K needs K >= 1 (or no K for every class)")
    if not count or count >= len(class_ids):
        return list(class_ids)
    rng = np.random.default_rng(seed)
    return sorted(int(c) for c in rng.choice(class_ids, count, replace=False))


def rederive(ws: Workspace, facts: dict[str, Any], dataset: Any, count: int | None,
             seed: int) -> dict[str, Any]:
    """``{classes, identical, differing, not_rederivable, environment, passed, ...}``."""
    from engine.independent import environment
    from engine.serialize import assemble

    shared, served, recorded = _served(ws, facts)
    fresh = assemble(shared, {})
    chosen = pick_classes(sorted(served), count, seed)
    here = environment(fresh.settings["threads"])
    same_env = _comparable(here) == _comparable(recorded)
    learned = _learned(ws, facts)
    rows = {str(cid): _one(fresh, cid, served[cid], _images(dataset, learned, cid))
            for cid in chosen}
    # identical is the bar on the machine that trained the model; elsewhere, the tolerance
    accepted = ("identical",) if same_env else ("identical", "within tolerance")
    missing = [int(c) for c, r in rows.items() if r["status"] == "not re-derivable"]
    differing = [int(c) for c, r in rows.items()
                 if r["status"] not in accepted and int(c) not in missing]
    return {"classes": [int(c) for c in rows], "per_class": rows,
            "identical": [int(c) for c, r in rows.items() if r["status"] == "identical"],
            "differing": differing, "not_rederivable": missing,
            "environment": here, "trained_environment": recorded,
            "same_environment": same_env, "tolerance": None if same_env else TOLERANCE,
            "passed": not differing and not missing and bool(rows)}


def _images(dataset: Any, learned: dict[int, dict[str, Any]], cid: int) -> Any:
    """The class's own images: from the recorded split, or the folder it was learned from
    (checked against the recorded digest); a reason string when they are gone."""
    from engine.independent_jobs import learned_from, own_images

    if cid in dataset.class_ids:
        return own_images(dataset, cid)
    record = learned.get(cid)
    if record is None:
        return "no record of the images this class was learned from"
    from engine.image_jobs import _class_images

    try:
        images = _class_images(Path(record["data_dir"]), dataset)
    except UnpromptError as exc:
        return f"its images cannot be read any more ({exc})"
    if learned_from(cid, record["data_dir"], images)["images_sha256"] != record["images_sha256"]:
        return f"the images in {record['data_dir']} changed since the class was learned"
    return images


def _one(fresh: Any, cid: int, stored: bytes, images: Any) -> dict[str, Any]:
    """Derive one class and compare: identical, within tolerance, differs."""
    import torch

    from engine.independent import derive_class, set_class
    from engine.serialize import class_bytes, load_class

    if isinstance(images, str):
        return {"status": "not re-derivable", "reason": images}
    set_class(fresh, cid, derive_class(fresh, images))
    if class_bytes(fresh, cid) == stored:
        return {"status": "identical", "max_abs_diff": 0.0}
    probe = type(fresh)([], **{k: v for k, v in fresh.config.items()})
    load_class(probe, cid, stored)
    diff = max(float((a.detach() - b.detach()).abs().max())
               for a, b in zip(fresh.class_parameters(cid).values(),
                               probe.class_parameters(cid).values(), strict=True))
    status = "within tolerance" if diff <= TOLERANCE and torch.isfinite(
        torch.tensor(diff)) else "differs"
    return {"status": status, "max_abs_diff": diff}


def _served(ws: Workspace, facts: dict[str, Any]) -> tuple[bytes, dict[int, bytes], dict]:
    """The live version's shared and class artifact bytes and the recorded environment."""
    from storage.models import ModelVersion

    with ws.sessions() as session:
        live = session.get(ModelVersion, facts["version_id"])
        first = live.model.versions[0]
        recorded = dict((first.metrics.get("derivation") or {}).get("environment") or {})
        shared_sha, classes = live.shared_artifact, dict(live.class_artifacts)
    return (ws.artifacts.get(shared_sha),
            {int(c): ws.artifacts.get(sha) for c, sha in classes.items()}, recorded)


def _learned(ws: Workspace, facts: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """What each learned class was learned from (the learn versions' records)."""
    from storage.models import ModelVersion

    with ws.sessions() as session:
        live = session.get(ModelVersion, facts["version_id"])
        records = [v.metrics.get("learned_from") for v in live.model.versions]
    return {int(r["class"]): dict(r) for r in records if r}


def _comparable(env: dict[str, Any]) -> tuple:
    return tuple(env.get(k) for k in ("torch", "threads", "device", "machine"))
