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
from engine.ray_fanout import fan_out, fans_out
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
    retained, key = _retained_and_key(facts, dataset)
    cached = _load_cached(ws, facts["model"], key)
    if cached is not None:
        yield Progress(1.0, "using the cached retrain reference")
        return cached
    config = _config(facts, retained)
    model, seconds = yield from _train(config, subset(dataset, retained),
                                       backbone_state(ws, facts["backbone_source"]), cancel)
    assert_never_learned(model, facts["forgotten"])
    from engine.model_store import model_blobs

    record = _store(ws, facts, model_blobs(model), key, retained, seconds, operator)
    return model, record


def fans_out_references(facts: dict[str, Any]) -> bool:
    """Whether several references of ``facts``' model train as parallel Ray tasks here."""
    from engine.device import resolve_device

    return fans_out(resolve_device(facts["config"].get("device", "auto")))


def reference_jobs(ws: Workspace, many: Sequence[dict[str, Any]], dataset: Any, operator: str,
                   cancel: CancelToken | None = None
                   ) -> Generator[Progress, None, list[tuple[Any, dict[str, Any]]]]:
    """``reference_job`` for each of ``many``; on the Ray backend the ones not cached train
    as parallel Ray tasks (docs/design.md section 12): the same code, seeds and artifacts."""
    from engine.audit.stages import scaled
    from engine.device import resolve_device
    from engine.serialize import assemble

    if not fans_out_references(many[0]):
        done = []
        for i, facts in enumerate(many):
            job = reference_job(ws, facts, dataset, operator, cancel)
            done.append((yield from scaled(job, i / len(many), (i + 1) / len(many))))
        return done
    plans = [_retained_and_key(facts, dataset) for facts in many]
    out = [_load_cached(ws, f["model"], key) for f, (_, key) in zip(many, plans, strict=True)]
    todo = [i for i, found in enumerate(out) if found is None]
    each = [{"config": _config(many[i], plans[i][0]), "retained": plans[i][0],
             "backbone_state": backbone_state(ws, many[i]["backbone_source"])} for i in todo]
    device = resolve_device(many[0]["config"].get("device", "auto"))
    trained = yield from fan_out(trained_blobs, {"dataset": dataset}, each,
                                 "retrain references", cancel, device)
    for i, (blobs, seconds) in zip(todo, trained, strict=True):
        model = assemble(*blobs)
        assert_never_learned(model, many[i]["forgotten"])
        retained, key = plans[i]
        out[i] = model, _store(ws, many[i], blobs, key, retained, seconds, operator)
    return out


def trained_blobs(dataset: Any, config: dict[str, Any], retained: list[int],
                  backbone_state: Any) -> tuple[Any, float]:
    """One reference's artifact bytes and training seconds (a Ray task's body)."""
    from engine.jobs import run_job
    from engine.model_store import model_blobs

    model, seconds = run_job(_train(config, subset(dataset, retained), backbone_state, None))
    return model_blobs(model), seconds


def assert_never_learned(model: Any, forgotten: Sequence[int]) -> None:
    """A reference must not hold a prompt (or head row) of a forgotten class."""
    leaked = sorted(set(model.class_ids) & {int(c) for c in forgotten})
    if leaked:
        raise IntegrityError(f"the retrain reference has prompts of forgotten classes {leaked}")


def _retained_and_key(facts: dict[str, Any], dataset: Any) -> tuple[list[int], str]:
    retained = [c for c in dataset.class_ids if c not in facts["forgotten"]]
    return retained, reference_key(facts["config"], dataset.split.get("digest", ""),
                                   facts["backbone_source"], retained, facts["forgotten"])


def _config(facts: dict[str, Any], retained: list[int]) -> dict[str, Any]:
    return {**facts["config"], "classes": list(retained)}


def _train(config: dict[str, Any], data: Any, state: Any, cancel: CancelToken | None
           ) -> Generator[Progress, None, tuple[Any, float]]:
    from engine.training import TrainConfig, train_job

    start = time.monotonic()
    result = yield from train_job(TrainConfig.from_dict(config), cancel, dataset=data,
                                  backbone_state=state)
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


def _store(ws: Workspace, facts: dict[str, Any], blobs: Any, key: str,
           retained: list[int], seconds: float, operator: str) -> dict[str, Any]:
    from engine.model_store import store_blobs

    shared, classes = store_blobs(ws, blobs)
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
