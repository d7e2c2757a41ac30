"""Training, learning and re-deriving independent classes (docs/design.md section 17).

``train_independent`` is what ``engine.training.train_job`` runs for the independent mode:
the pool from the declared non-erasable data, then each class on its own. Classes could
be derived in parallel or on different days; the bytes would be the same: on the Ray
backend they are derived in parallel, as Ray tasks (``derive_classes``).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from typing import Any

import torch

from engine.audit.stages import scaled
from engine.datasets import ImageDataset, class_seed, load_dataset, load_reference
from engine.independent import (
    IndependentViT,
    derive_class,
    environment,
    pool_covariance,
    set_class,
)
from engine.jobs import CancelToken, Progress
from engine.ray_fanout import fan_out, fans_out
from storage.errors import RefusedError, UnpromptError


def load_classes(cfg: Any) -> ImageDataset:
    """The recipe's data, each class's images chosen with its own seed."""
    return load_dataset(cfg.dataset, cfg.data_dir, cfg.classes, cfg.img_size, cfg.seed,
                        cfg.max_per_class, class_seeded=True, stream=cfg.stream,
                        workers=cfg.workers)


def train_independent(cfg: Any, cancel: CancelToken | None = None,
                      dataset: ImageDataset | None = None,
                      backbone_state: Mapping[str, torch.Tensor] | None = None
                      ) -> Generator[Progress, None, Any]:
    """A ``TrainResult`` whose every class was derived from its own images only."""
    from engine.training import TrainResult, evaluate

    cancel = cancel or CancelToken()
    start = time.monotonic()
    yield Progress(0.0, f"loading {cfg.dataset}")
    data = dataset if dataset is not None else load_classes(cfg)
    torch.manual_seed(cfg.seed)  # a backbone without weights starts from the recipe seed
    model = IndependentViT(
        backbone=cfg.backbone, img_size=data.img_size, patch_size=cfg.patch_size,
        in_chans=data.channels, pretrained=cfg.pretrained, overrides=cfg.overrides,
        backbone_state=backbone_state)
    if cfg.pool_data:
        yield Progress(0.05, "pool statistics from the non-erasable data")
        model.set_pool(pool_from(model, cfg.pool_data), _pool_source(cfg.pool_data))
    yield from derive_classes(model, data, cancel)
    cancel.check()
    per_class, accuracy = evaluate(model, data.test_x, data.test_y)
    return TrainResult(model, per_class, accuracy, time.monotonic() - start, cfg.to_dict(),
                       data.reference(), dict(data.class_names), "CPU", [])


def derive_classes(model: IndependentViT, data: ImageDataset, cancel: CancelToken
                   ) -> Generator[Progress, None, None]:
    """Each class of ``data`` from its own images, into ``model``: one after another, or as
    parallel Ray tasks on the Ray backend (docs/design.md section 12; the same bytes)."""
    classes = list(data.class_ids)
    if fans_out("cpu"):  # classes derive on the CPU (section 17)
        each = [{"images": own_images(data, cid)} for cid in classes]
        derived = yield from scaled(fan_out(derive_class, {"model": model}, each,
                                            "classes", cancel), 0.1, 0.9)
        for cid, tensors in zip(classes, derived, strict=True):
            set_class(model, cid, tensors)
        return
    for i, cid in enumerate(classes):
        cancel.check()
        yield Progress(0.1 + 0.8 * i / len(classes), f"class {cid}: its own Gaussian")
        set_class(model, cid, derive_class(model, own_images(data, cid)))


def derivation_record(model: IndependentViT, seed: int) -> dict[str, Any]:
    """Seeds and environment of a derivation, for the registry (``engine.image_jobs``)."""
    return {"class_seeds": {str(c): class_seed(seed, c) for c in model.class_ids},
            "environment": environment(model.settings["threads"])}


def own_images(data: ImageDataset, cid: int) -> torch.Tensor:
    """The class's training images in dataset order (the recorded split keeps it)."""
    images = data.train_x[data.train_y == int(cid)]
    if len(images) == 0:
        raise UnpromptError(f"class {cid} has no training image in the recorded data")
    return images


def pool_from(model: IndependentViT, reference: Mapping[str, Any]) -> torch.Tensor:
    """The pool covariance from the declared non-erasable data (its train split)."""
    if not reference.get("non_erasable"):
        raise RefusedError("the pool data of an independent model must be declared "
                           "non-erasable (a registered backbone's pretraining data)")
    data = load_reference(dict(reference))
    return pool_covariance(model, data.train_x, data.train_y)


def _pool_source(reference: Mapping[str, Any]) -> dict[str, Any]:
    return {"dataset": reference.get("dataset"), "classes": reference.get("classes"),
            "digest": (reference.get("split") or {}).get("digest")}


def learned_from(class_id: int, data_dir: str, images: torch.Tensor) -> dict[str, Any]:
    """Where a learned class's images are and their digest, so an auditor can re-derive it."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()
    return {"class": int(class_id), "data_dir": str(Path(data_dir).expanduser().resolve()),
            "images_sha256": digest, "count": len(images)}


def learn_independent(model: IndependentViT, class_id: int, images: torch.Tensor,
                      cancel: CancelToken | None = None) -> Generator[Progress, None, Any]:
    """Add ``class_id`` from its own images; no other byte of the model changes."""
    from engine.training import LearnResult, evaluate

    start = time.monotonic()
    if int(class_id) in model.class_ids:
        raise RefusedError(f"Class {class_id} already has parameters in this model.")
    yield Progress(0.0, f"class {class_id}: its own Gaussian")
    tensors = derive_class(model.cpu(), images.float())
    if cancel is not None:
        cancel.check()
    set_class(model, class_id, tensors)
    per_class, _ = evaluate(model, images.float(), torch.full((len(images),), int(class_id)))
    return LearnResult(model, int(class_id), per_class.get(int(class_id), 0.0),
                       time.monotonic() - start)
