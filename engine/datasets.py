"""Image datasets with a fixed, recorded train / test split (docs/design.md section 4).

``load_dataset`` returns the images as ``engine.images.Images`` (uint8 ``(N, C, H, W)``,
in memory or streamed from an on-disk cache, read as floats in [-1, 1] one batch at a
time) and labels that are the dataset's own label indices, so a class keeps one stable id
everywhere (the model keys its prompts by it). Readers for the file formats live in
``engine.dataset_files``; every bad input raises ``UnpromptError`` with one sentence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import dataset_files as files
from engine.dataset_store import Storage, check_memory, decoded_images, source_identity
from engine.images import Images, as_images
from storage.errors import NotFoundError, UnpromptError

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
TEST_FRACTION = 0.2  # for datasets without an official split


@dataclass
class ImageDataset:
    """Train / test tensors of the selected classes plus how they were made."""

    name: str
    class_ids: list[int]
    class_names: dict[int, str]
    train_x: Images  # (N, C, H, W) uint8 or floats; a float tensor given is wrapped
    train_y: Any  # torch.Tensor (N,) int64, the dataset's own label indices
    test_x: Images
    test_y: Any
    params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train_x, self.test_x = as_images(self.train_x), as_images(self.test_x)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def img_size(self) -> int:
        return int(self.train_x.shape[-1])

    def reference(self) -> dict[str, Any]:
        """JSON-able record for the registry; ``load_reference`` rebuilds the same data."""
        return {**self.params, "split": self.split, "class_names": {
            str(c): self.class_names[c] for c in self.class_ids}}


def load_dataset(name: str, data_dir: str | Path | None = None,
                 classes: Sequence[int | str] | None = None, img_size: int | None = None,
                 seed: int = 0, max_per_class: int | None = None,
                 class_seeded: bool | None = False, memory_limit: int | None = None,
                 stream: bool | None = False, cache_dir: str | Path | None = None,
                 workers: int | None = None) -> ImageDataset:
    """Load dataset ``name``, keep ``classes`` (indices or names), resize to ``img_size``.

    ``class_seeded``: every class's split and cap draw from its own seed (``class_seed``),
    so a class gets the same images whichever other classes are loaded with it (the
    independent mode, docs/design.md section 17); off, one generator runs over all classes.
    ``stream``: decode once into the on-disk cache (``cache_dir``) and read it through
    ``workers`` DataLoader processes; else held in memory, refused before any tensor is
    made when the uint8 images would not fit in ``memory_limit`` bytes (default: most of
    the memory available now)."""
    raw = _read_raw(name, data_dir, img_size)
    ids = resolve_classes(classes, raw.names)
    if raw.test is None:
        train_idx, test_idx = stratified_split(raw.train_labels, ids, TEST_FRACTION, seed,
                                               bool(class_seeded))
        split = {"kind": "seeded-stratified", "test_fraction": TEST_FRACTION, "seed": seed}
        test_images, test_labels = raw.train_images, raw.train_labels
    else:
        train_idx = _select(raw.train_labels, ids)
        test_idx = _select(raw.test[1], ids)
        split = {"kind": "official"}
        test_images, test_labels = raw.test
    if max_per_class is not None:
        train_idx = _cap_per_class(train_idx, raw.train_labels, max_per_class, seed,
                                   bool(class_seeded))
    if not stream:
        check_memory(name, raw.train_images, len(train_idx) + len(test_idx), img_size,
                     memory_limit)
    split.update(train_count=len(train_idx), test_count=len(test_idx),
                 digest=_split_digest(train_idx, test_idx))
    params = {"dataset": name, "data_dir": str(raw.folder) if raw.folder else None,
              "classes": ids, "img_size": img_size, "seed": seed,
              "max_per_class": max_per_class, "normalise": "x / max * 2 - 1"}
    if class_seeded:  # only then: older references keep their exact params
        params["class_seeded"] = True
    if stream:  # likewise; a reload streams again
        params["stream"] = True
    storage = Storage(bool(stream), cache_dir, workers)
    identity = source_identity(name, raw.folder) if stream else {}
    return ImageDataset(
        name=name, class_ids=ids, class_names={i: raw.names[i] for i in ids},
        train_x=decoded_images(raw.train_images, train_idx, raw.max_value, img_size,
                               storage, {**identity, "part": "train"}),
        train_y=_labels(raw.train_labels[train_idx]),
        test_x=decoded_images(test_images, test_idx, raw.max_value, img_size, storage,
                              {**identity, "part": "test" if raw.test else "train"}),
        test_y=_labels(test_labels[test_idx]), params=params, split=split)


def load_reference(reference: dict[str, Any]) -> ImageDataset:
    """Reload the dataset a model was trained on and check the split is the same."""
    keys = ("data_dir", "classes", "img_size", "seed", "max_per_class", "class_seeded",
            "stream")
    data = load_dataset(reference["dataset"], **{k: reference.get(k) for k in keys})
    expected = reference.get("split", {}).get("digest")
    if expected and expected != data.split["digest"]:
        raise UnpromptError(
            f"The {reference['dataset']} data at {reference.get('data_dir')} has changed since "
            "the model was trained, so its recorded train / test split no longer matches.")
    return data


def resolve_classes(classes: Sequence[int | str] | None, names: Sequence[str]) -> list[int]:
    """Turn class indices, names or ranges like ``"0-4"`` into sorted label indices."""
    if classes is None or len(classes) == 0:
        return list(range(len(names)))
    ids: set[int] = set()
    for item in classes:
        ids.update(_resolve_one(item, names))
    return sorted(ids)


def _resolve_one(item: int | str, names: Sequence[str]) -> list[int]:
    if isinstance(item, str) and item in names:
        return [list(names).index(item)]
    text = str(item).strip()
    lo, sep, hi = text.partition("-")
    try:
        ids = list(range(int(lo), int(hi) + 1)) if sep and lo else [int(text)]
    except ValueError:
        ids = []
    if not ids or any(i < 0 or i >= len(names) for i in ids):
        known = ", ".join(names) if len(names) <= 20 else f"0-{len(names) - 1}"
        raise NotFoundError(f"Unknown class {item!r}; this dataset has: {known}.")
    return ids


def class_seed(seed: int, label: int) -> int:
    """The seed of one class: from the recipe seed and the class's label, never from its
    position among the classes loaded (docs/design.md section 17)."""
    digest = hashlib.sha256(f"unprompt.class-seed/{int(seed)}/{int(label)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _class_rng(seed: int, cid: int, shared: np.random.Generator | None) -> np.random.Generator:
    return shared if shared is not None else np.random.default_rng(class_seed(seed, cid))


def stratified_split(labels: np.ndarray, ids: Sequence[int], test_fraction: float,
                     seed: int, class_seeded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split: each class with 2+ samples puts >= 1 in test."""
    shared = None if class_seeded else np.random.default_rng(seed)
    train, test = [], []
    for cid in ids:
        rng = _class_rng(seed, int(cid), shared)
        idx = np.flatnonzero(labels == cid)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, round(len(idx) * test_fraction)) if len(idx) >= 2 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def to_tensor(images: np.ndarray, max_value: float, img_size: int | None):
    """uint8 / float ``(N, H, W[, C])`` array to a normalised ``(N, C, H, W)`` tensor."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x / max_value * 2 - 1
    if img_size is not None and tuple(x.shape[-2:]) != (img_size, img_size):
        chunks = [F.interpolate(part, size=(img_size, img_size), mode="bilinear",
                                align_corners=False, antialias=True)
                  for part in x.split(4096)] if len(x) else [x.new_zeros(
                      (0, x.shape[1], img_size, img_size))]
        x = torch.cat(chunks).clamp_(-1, 1)
    return x.contiguous()


def match_channels(x, channels: int):
    """Adapt images to a model's channel count (grey <-> RGB)."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    if x.shape[1] == 1:
        return x.repeat(1, channels, 1, 1)
    raise UnpromptError(
        f"Images with {x.shape[1]} channels cannot feed a {channels}-channel model.")


def _read_raw(name: str, data_dir: str | Path | None, img_size: int | None) -> files.RawData:
    if name == "digits":
        return files.read_digits()
    if name in ("fashion-mnist", "mnist"):
        folder = _folder(data_dir, FASHION_MNIST_DIR if name == "fashion-mnist" else None, name)
        names = FASHION_MNIST_NAMES if name == "fashion-mnist" else None
        return files.read_idx_folder(folder, names)
    if name in ("cifar10", "cifar100"):
        return files.read_cifar(_folder(data_dir, None, name), fine=name == "cifar100")
    if name == "imagefolder":
        return files.read_image_folder(_folder(data_dir, None, name), img_size)
    raise NotFoundError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")


def _folder(data_dir: str | Path | None, default: Path | None, name: str) -> Path:
    folder = Path(data_dir).expanduser() if data_dir is not None else default
    if folder is None:
        raise UnpromptError(f"The {name} dataset needs a data folder (--data-dir).")
    if not folder.is_dir():
        raise NotFoundError(f"The {name} data folder {folder} does not exist.")
    return folder


def _select(labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    return np.flatnonzero(np.isin(labels, np.asarray(ids)))


def _cap_per_class(idx: np.ndarray, labels: np.ndarray, cap: int, seed: int,
                   class_seeded: bool = False) -> np.ndarray:
    shared = None if class_seeded else np.random.default_rng(seed + 1)
    kept = []
    for cid in np.unique(labels[idx]):
        rng = _class_rng(seed + 1, int(cid), shared)
        own = idx[labels[idx] == cid]
        kept.append(own if len(own) <= cap else rng.choice(own, cap, replace=False))
    return np.sort(np.concatenate(kept)) if kept else idx


def _split_digest(train_idx: np.ndarray, test_idx: np.ndarray) -> str:
    payload = json.dumps([train_idx.tolist(), test_idx.tolist()]).encode()
    return hashlib.sha256(payload).hexdigest()


def _labels(values: np.ndarray):
    import torch

    return torch.from_numpy(np.asarray(values, dtype=np.int64))
