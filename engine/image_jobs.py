"""Image-model jobs against the registry: pretrain, train, evaluate, learn (docs/design.md 4, 8).

Every job takes the workspace folder and plain options (so the CLI, the tests and the
GUI worker process call the same functions), yields progress and returns plain data.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, Progress
from engine.model_store import (
    blob_hashes,
    image_model,
    load_live,
    model_blobs,
    refuse_forgotten_since,
    refuse_taken_name,
    registering,
    store_blobs,
)
from storage.erasure_kinds import erasure_kind
from storage.errors import RefusedError, UnpromptError
from storage.models import ModelVersion
from storage.registry import get_model, live_version
from storage.versions import NewModel, commit_learn, register_model
from storage.workspace import Workspace


def pretrain_backbone_job(workspace: str | Path, *, name: str, operator: str,
                          cancel: CancelToken | None = None, **options: Any
                          ) -> Generator[Progress, None, dict[str, Any]]:
    """Train a backbone on data declared non-erasable and register it (kind 'backbone')."""
    from engine.serialize import backbone_bytes
    from engine.training import TrainConfig, pretrain_job

    ws = Workspace.open(workspace)
    try:
        refuse_taken_name(ws, name)
        cfg = TrainConfig.for_dataset(options.pop("dataset", "digits"), **options)
        result = yield from pretrain_job(cfg, cancel)
        declared = {**result.dataset, "non_erasable": True}
        blob = backbone_bytes(result.state, result.arch)
        with registering(ws, [(blob, "backbone")]) as [sha], ws.sessions.begin() as session:
            register_model(session, NewModel(
                name=name, kind="backbone", backbone=result.arch["backbone"], mode="pretrain",
                dataset_ref=declared, config={"arch": result.arch, "train": result.config},
                shared_artifact=sha, class_artifacts={}, class_names={},
                metrics={"test_accuracy": result.test_accuracy, "seconds": result.seconds},
                erasure_kind=""), operator)
        return {"name": name, "version": 1, "test_accuracy": result.test_accuracy,
                "seconds": result.seconds, "classes": declared.get("classes"),
                "artifact": sha}
    finally:
        ws.close()


def train_model_job(workspace: str | Path, *, name: str, operator: str,
                    cancel: CancelToken | None = None, backbone_from: str | None = None,
                    **options: Any) -> Generator[Progress, None, dict[str, Any]]:
    """Train a pre-forgettable model and register it as version 1."""
    from engine.training import TrainConfig, train_job

    ws = Workspace.open(workspace)
    try:
        refuse_taken_name(ws, name)
        dataset = options.pop("dataset", None) or "digits"
        state, source, arch = _backbone_source(ws, backbone_from, options.get("pretrained"))
        pool = source.pop("pool_data", None)  # the backbone's declared non-erasable data
        if options.get("mode") == "independent":  # docs/design.md section 17
            options["pool_data"] = pool
        cfg = TrainConfig.for_dataset(dataset, **{**options, **arch})
        _check_mode(cfg.mode, source)
        result = yield from train_job(cfg, cancel, backbone_state=state)
        _check_disjoint(source, result.dataset)
        kind = erasure_kind(cfg.mode, source["non_erasable"])
        yield Progress(1.0, "storing artifacts")
        metrics = {"test_accuracy": result.test_accuracy, "seconds": result.seconds,
                   "per_class": {str(k): v for k, v in result.per_class_accuracy.items()},
                   "device": result.device, "backbone_source": source}
        if cfg.mode == "independent":
            from engine.independent_jobs import derivation_record

            metrics["derivation"] = derivation_record(result.model, cfg.seed)
        blobs = model_blobs(result.model)
        shared, classes = blob_hashes(blobs)
        parts = [(blobs[0], "shared"), *((data, "class") for data in blobs[1].values())]
        with registering(ws, parts), ws.sessions.begin() as session:
            register_model(session, NewModel(
                name=name, kind="image", backbone=cfg.backbone, mode=cfg.mode,
                dataset_ref=result.dataset, config=result.config, shared_artifact=shared,
                class_artifacts=classes, class_names=result.class_names, metrics=metrics,
                erasure_kind=kind), operator)
        return {"name": name, "version": 1, "classes": [result.class_names[c] for c in
                                                        sorted(result.class_names)],
                "test_accuracy": result.test_accuracy, "seconds": result.seconds,
                "mode": cfg.mode, "erasure_kind": kind, "device": result.device,
                "per_class": metrics["per_class"]}
    finally:
        ws.close()


def _backbone_source(ws: Workspace, backbone_from: str | None, pretrained: str | None
                     ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The backbone's weights, where they come from, and the architecture they fix."""
    if backbone_from and pretrained not in (None, "", "none"):
        raise UnpromptError("use either --backbone-from or --pretrained, not both")
    if not backbone_from:
        kind = "none" if pretrained in (None, "", "none") else (
            "hub" if str(pretrained).startswith("hub") else "file")
        # Random weights learned nothing; hub weights come from public data; a file is
        # declared non-erasable by the operator who supplies it.
        return None, {"kind": kind, "pretrained": pretrained or "none",
                      "non_erasable": True}, {}
    from engine.serialize import load_backbone

    with ws.sessions() as session:
        model = get_model(session, backbone_from)
        if model.kind != "backbone":
            raise UnpromptError(f"{backbone_from!r} is not a pretrained backbone (see `pretrain`)")
        version = live_version(session, model)
        arch, declared = dict(model.config["arch"]), dict(model.dataset_ref)
    state, _arch = load_backbone(ws.artifacts.get(version.shared_artifact))
    source = {"kind": "registered", "name": backbone_from, "dataset": declared.get("dataset"),
              "classes": declared.get("classes"), "non_erasable": True, "pool_data": declared}
    keep = {k: arch[k] for k in ("backbone", "overrides", "img_size", "patch_size") if k in arch}
    return state, source, keep


def _check_mode(mode: str, source: dict[str, Any]) -> None:
    if mode in ("isolated", "independent") and source["kind"] == "none":
        raise UnpromptError(f"{mode} mode needs a backbone pretrained on non-erasable data: "
                            "--backbone-from NAME (see `pretrain`) or --pretrained hub/FILE")


def _check_disjoint(source: dict[str, Any], dataset: dict[str, Any]) -> None:
    """A registered backbone must never have seen the classes this model makes erasable."""
    if source["kind"] != "registered" or source.get("dataset") != dataset.get("dataset"):
        return
    overlap = sorted(set(source.get("classes") or []) & set(dataset.get("classes") or []))
    if overlap:
        raise RefusedError(f"backbone {source['name']!r} was pretrained on classes {overlap} "
                           "that this model would make erasable; train on classes it never saw")


def evaluate_model(workspace: str | Path, model_name: str) -> dict[str, Any]:
    """Per-class test accuracy of the live version (forgotten classes score 0)."""
    ws = Workspace.open(workspace)
    try:
        finish_evaluation(ws, model_name)
        model, info = load_live(ws, model_name)
        return {**_describe(info), **accuracy_report(model, info)}
    finally:
        ws.close()


def finish_evaluation(ws: Workspace, model_name: str) -> None:
    """Step 5 of a forget killed before it: measure the live version now (the scan and
    its record were resumed when the workspace opened, ``storage.post_forget``)."""
    with ws.sessions() as session:
        model = image_model(session, model_name)
        version = live_version(session, model)
        if not version.metrics.get("evaluation_pending"):
            return
        number = version.number
        labels = sorted(c.label_index for c in model.classes
                        if c.forgotten_in_version_id == version.id)
    live, info = load_live(ws, model_name)
    record_accuracy_after(ws, model_name, number, accuracy_report(live, info, forgotten=labels))


def record_accuracy_after(ws: Workspace, model_name: str, number: int,
                          after: dict[str, Any]) -> None:
    """Keep a forget's accuracy after with its version (audits quote it later, when the
    purged versions can no longer be loaded); clears ``evaluation_pending``."""
    with ws.sessions.begin() as session:
        model = image_model(session, model_name)
        version = next(v for v in model.versions if v.number == number)
        version.metrics = {**{k: v for k, v in version.metrics.items()
                              if k != "evaluation_pending"}, "accuracy_after": after}


def _describe(info: dict[str, Any]) -> dict[str, Any]:
    return {"model": info["model"], "version": info["version"],
            "erasure_kind": info["erasure_kind"]}


def accuracy_report(model: Any, info: dict[str, Any], forgotten: list[int] | None = None,
                    device: Any = "auto") -> dict[str, Any]:
    """Accuracy on the recorded test split: retained overall, per class, and forgotten.

    Measured in batches on the job's device; the model goes back where it was."""
    from engine.device import on_device, resolve_device
    from engine.training import evaluate

    data = cached_reference(info["dataset"])
    dev = resolve_device(device)
    with on_device(model, dev):
        per_class, _ = evaluate(model, data.test_x, data.test_y, dev)
    names = info["class_names"]
    retained = [c for c in model.class_ids]
    keep = sum(int((data.test_y == c).sum()) for c in retained)
    hits = sum(per_class.get(c, 0.0) * int((data.test_y == c).sum()) for c in retained)
    report = {"retained": hits / keep if keep else 0.0,
              "per_class": {names.get(c, str(c)): per_class.get(c, 0.0)
                            for c in sorted(set(retained) | set(forgotten or []))}}
    if forgotten is not None:
        report["forgotten"] = {names.get(c, str(c)): per_class.get(c, 0.0) for c in forgotten}
    return report


_DATASETS: dict[str, Any] = {}


def cached_reference(reference: dict[str, Any]) -> Any:
    """The model's recorded dataset, loaded once per process (the worker serves many jobs)."""
    import json

    from engine.datasets import load_reference

    key = json.dumps(reference, sort_keys=True, default=str)
    if key not in _DATASETS:
        _DATASETS.clear()  # keep one dataset in memory at a time
        _DATASETS[key] = load_reference(reference)
    return _DATASETS[key]


def learn_job(workspace: str | Path, *, model_name: str, class_name: str, data_dir: str,
              operator: str, cancel: CancelToken | None = None, epochs: int = 10,
              seed: int = 0) -> Generator[Progress, None, dict[str, Any]]:
    """Add a class as a new prompt + head row trained on its own images only."""
    from engine.erased_images import refuse_class_name, refuse_erased_images
    from engine.training import learn_class_job

    ws = Workspace.open(workspace)
    try:
        model, info = load_live(ws, model_name)
        refuse_class_name(ws, model_name, class_name)
        data = cached_reference(info["dataset"])
        images = _class_images(Path(data_dir), data)
        refuse_erased_images(ws, model_name, images, data)
        before = accuracy_report(model, info)
        old_shas = _class_shas(ws, model_name)
        new_id = max(info["class_names"]) + 1  # ids of forgotten classes are never reused
        known = list(model.class_ids)
        extra: dict[str, Any] = {}
        if info["mode"] == "independent":  # its own images only: docs/design.md section 17
            from engine.independent_jobs import learn_independent, learned_from

            result = yield from learn_independent(model, new_id, images, cancel)
            extra["learned_from"] = learned_from(new_id, data_dir, images)
        else:
            result = yield from learn_class_job(model, new_id, images, epochs=epochs, seed=seed,
                                                retain=(data.train_x, data.train_y),
                                                cancel=cancel)
        refuse_forgotten_since(ws, model_name, known, f"learning {class_name!r}")
        blobs = model_blobs(result.model)
        shared, classes = blob_hashes(blobs)
        _assert_untouched(old_shas, classes, shared, ws, model_name)  # before any byte is stored
        info["class_names"][new_id] = class_name
        after = accuracy_report(result.model, info)
        store_blobs(ws, blobs)
        with ws.sessions.begin() as session:
            version = commit_learn(session, image_model(session, model_name), new_id,
                                   class_name, classes[new_id], operator,
                                   {"accuracy_before": before, "accuracy_after": after,
                                    **extra})
            number = version.number
        return {"model": model_name, "version": number, "class": class_name, "index": new_id,
                "train_accuracy": result.train_accuracy, "seconds": result.seconds,
                "accuracy_before": before, "accuracy_after": after,
                "retained_change": after["retained"] - before["retained"]}
    finally:
        ws.close()


def _class_images(folder: Path, data: Any) -> Any:
    """The new class's images, shaped and scaled like the model's training data."""
    from engine.dataset_store import folder_images

    return folder_images(folder, data.img_size, data.channels)


def _class_shas(ws: Workspace, model_name: str) -> tuple[str, dict[str, str]]:
    with ws.sessions() as session:
        version: ModelVersion = live_version(session, get_model(session, model_name))
        return version.shared_artifact, dict(version.class_artifacts)


def _assert_untouched(old: tuple[str, dict[str, str]], classes: dict[int, str], shared: str,
                      ws: Workspace, model_name: str) -> None:
    """Learning must leave every existing class's bytes (and the shared part) identical."""
    old_shared, old_classes = old
    changed = [k for k, sha in old_classes.items() if classes.get(int(k)) != sha]
    if shared != old_shared or changed:
        raise UnpromptError(f"learning a class changed existing parameters of {model_name!r} "
                            f"(classes {changed}); nothing was registered")
