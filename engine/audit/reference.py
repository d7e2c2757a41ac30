"""The retrain reference: the model's configuration trained without the forgotten classes.

Trained once per model and forgotten set and cached in the workspace: its artifacts go
into the content-addressed store and an AuditRun row of kind ``reference`` records their
hashes under a cache key (training config, recorded split, backbone source, retained and
forgotten class ids). Every later audit with the same key reuses it. It is built from
the retained classes only, so it holds no prompt of a forgotten class. When the model
later forgets a class the reference did learn, the forget retires the reference and
purges its artifacts with the model's own (``engine.forget_plan``); ``retire_stale``
at the start of an audit catches any left by an older version of the software.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from engine.jobs import CancelToken, Progress
from storage import audits
from storage.auditlog import canonical_json
from storage.errors import IntegrityError, UnpromptError
from storage.registry import get_model, live_version
from storage.workspace import Workspace


def reference_key(config: dict[str, Any], split_digest: str, source: dict[str, Any],
                  retained: Sequence[int], forgotten: Sequence[int]) -> str:
    """The cache key: everything that decides what the reference learns."""
    relevant = {k: v for k, v in config.items() if k not in ("device", "classes")}
    body = {"config": relevant, "split": split_digest, "backbone": source,
            "retained": sorted(int(c) for c in retained),
            "forgotten": sorted(int(c) for c in forgotten)}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def subset(dataset: Any, class_ids: Sequence[int]) -> Any:
    """The same recorded split restricted to ``class_ids`` (no other sample changes)."""
    ids = sorted(int(c) for c in class_ids)
    tr = np.isin(dataset.train_y.numpy(), ids)
    te = np.isin(dataset.test_y.numpy(), ids)
    return dataclasses.replace(
        dataset, class_ids=ids, class_names={c: dataset.class_names[c] for c in ids},
        train_x=dataset.train_x[tr], train_y=dataset.train_y[tr],
        test_x=dataset.test_x[te], test_y=dataset.test_y[te])


def reference_job(ws: Workspace, facts: dict[str, Any], dataset: Any, operator: str,
                  cancel: CancelToken | None = None
                  ) -> Generator[Progress, None, tuple[Any, dict[str, Any]]]:
    """The cached reference for ``facts`` (see ``job.registry_facts``), trained if absent.

    Returns the model and ``{"audit_run", "cached", "seconds", "key"}``.
    """
    retained = [c for c in dataset.class_ids if c not in facts["forgotten"]]
    key = reference_key(facts["config"], dataset.split.get("digest", ""),
                        facts["backbone_source"], retained, facts["forgotten"])
    cached = _load_cached(ws, facts["model"], key)
    if cached is not None:
        yield Progress(1.0, "using the cached retrain reference")
        return cached
    model, seconds = yield from _train(ws, facts, subset(dataset, retained), cancel)
    assert_never_learned(model, facts["forgotten"])
    record = _store(ws, facts, model, key, retained, seconds, operator)
    return model, record


def assert_never_learned(model: Any, forgotten: Sequence[int]) -> None:
    """A reference must not hold a prompt (or head row) of a forgotten class."""
    leaked = sorted(set(model.class_ids) & {int(c) for c in forgotten})
    if leaked:
        raise IntegrityError(f"the retrain reference has prompts of forgotten classes {leaked}")


def _train(ws: Workspace, facts: dict[str, Any], data: Any, cancel: CancelToken | None
           ) -> Generator[Progress, None, tuple[Any, float]]:
    from engine.training import TrainConfig, train_job

    config = {**facts["config"], "classes": list(data.class_ids)}
    cfg = TrainConfig.from_dict(config)
    start = time.monotonic()
    result = yield from train_job(cfg, cancel, dataset=data,
                                  backbone_state=backbone_state(ws, facts["backbone_source"]))
    return result.model, time.monotonic() - start


def backbone_state(ws: Workspace, source: dict[str, Any]) -> dict[str, Any] | None:
    """The registered backbone a model started from (None for random / hub / file)."""
    if source.get("kind") != "registered":
        return None
    from engine.serialize import load_backbone

    with ws.sessions() as session:
        version = live_version(session, get_model(session, source["name"]))
        sha = version.shared_artifact
    return load_backbone(ws.artifacts.get(sha))[0]


def _load_cached(ws: Workspace, model_name: str, key: str) -> tuple[Any, dict] | None:
    from engine.serialize import assemble

    with ws.sessions() as session:
        run = audits.find_reference(session, get_model(session, model_name), key)
        if run is None:
            return None
        info = {"audit_run": run.id, "cached": True, "key": key,
                "seconds": run.metrics.get("seconds")}
        shared, classes = run.metrics["shared_artifact"], run.metrics["class_artifacts"]
    try:
        model = assemble(ws.artifacts.get(shared),
                         {int(c): ws.artifacts.get(s) for c, s in classes.items()})
    except UnpromptError:
        return None  # damaged or missing: train a new one (the new row wins the lookup)
    return model, info


def _store(ws: Workspace, facts: dict[str, Any], model: Any, key: str,
           retained: list[int], seconds: float, operator: str) -> dict[str, Any]:
    from engine.model_store import store_model

    shared, classes = store_model(ws, model)
    config = {"key": key, "model": facts["model"], "forgotten": facts["forgotten"],
              "retained": retained, "train": facts["config"]}
    metrics = {"shared_artifact": shared, "class_artifacts": {str(c): s for c, s in
                                                              classes.items()},
               "seconds": seconds}
    with ws.sessions.begin() as session:
        run = audits.record_reference(session, version_id=facts["version_id"], config=config,
                                      metrics=metrics, operator=operator)
        run_id = run.id
    return {"audit_run": run_id, "cached": False, "key": key, "seconds": seconds}


def retire_stale(ws: Workspace, model_name: str, operator: str) -> list[str]:
    """Retire references that learned a since-forgotten class; purge their artifacts."""
    with ws.sessions.begin() as session:
        doomed: list[str] = []
        for run in audits.stale_references(session, get_model(session, model_name)):
            doomed += audits.retire_reference(session, run, operator,
                                              "the model has since forgotten a class it learned")
        ws.artifacts.mark_for_purge(session, doomed)
    return ws.artifacts.purge_marked() if doomed else []


def relearn_key(recipe: dict[str, Any], forgotten: Sequence[int], device: Any) -> str:
    """What decides a reference's relearn figures besides the reference itself."""
    body = {"recipe": recipe, "forgotten": sorted(int(c) for c in forgotten),
            "device": str(getattr(device, "type", device))}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def cached_relearn(ws: Workspace, run_id: int | None, key: str) -> dict[str, Any] | None:
    """The relearn figures kept with a stored reference for ``key`` (None: run it)."""
    if run_id is None:
        return None
    with ws.sessions() as session:
        return audits.reference_relearn(session, run_id, key)


def keep_relearn(ws: Workspace, run_id: int | None, key: str, result: dict[str, Any]) -> None:
    if run_id is not None:
        with ws.sessions.begin() as session:
            audits.keep_reference_relearn(session, run_id, key, result)
