"""What the audits read from a model: CLS features and logits on audit samples (torch).

``AuditData`` holds a seeded, per-class-capped sample of a model's recorded train and
test split (members and non-members of the audits) and which classes are forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class AuditData:
    """Audit samples (torch tensors) and the class bookkeeping the figures need."""

    train_x: Any
    train_y: np.ndarray
    test_x: Any
    test_y: np.ndarray
    names: dict[int, str]  # every class of the recorded dataset, by id
    forgotten: list[int]

    @property
    def retained(self) -> list[int]:
        return [c for c in self.names if c not in self.forgotten]


@dataclass
class Outputs:
    """A model's features and logits (over ``class_ids``) on the audit samples."""

    class_ids: list[int]
    train_features: np.ndarray
    train_logits: np.ndarray
    test_features: np.ndarray
    test_logits: np.ndarray


def sample_indices(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Up to ``per_class`` indices of each class, seeded, in ascending order."""
    rng = np.random.default_rng(seed)
    keep = []
    for cid in np.unique(labels):
        own = np.flatnonzero(labels == cid)
        keep.append(own if per_class is None or len(own) <= per_class
                    else rng.choice(own, per_class, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def audit_data(dataset: Any, forgotten: Sequence[int], per_class: int | None,
               seed: int) -> AuditData:
    """The audit samples of an ``ImageDataset`` (its recorded split)."""
    train_y, test_y = dataset.train_y.numpy(), dataset.test_y.numpy()
    tr = sample_indices(train_y, per_class, seed)
    te = sample_indices(test_y, per_class, seed + 1)
    return AuditData(dataset.train_x[tr], train_y[tr], dataset.test_x[te], test_y[te],
                     dict(dataset.class_names), sorted(int(c) for c in forgotten))


def model_outputs(model: Any, data: AuditData, device: Any = "cpu") -> Outputs:
    """Features and logits of ``model`` on the audit samples."""
    train_f, train_l = features_and_logits(model, data.train_x, device)
    test_f, test_l = features_and_logits(model, data.test_x, device)
    return Outputs(list(model.class_ids), train_f, train_l, test_f, test_l)


def features_and_logits(model: Any, x: Any, device: Any = "cpu", batch_size: int = 256
                        ) -> tuple[np.ndarray, np.ndarray]:
    """CLS features with every remaining prompt present, and the logits they give."""
    import torch

    from engine.images import as_images, in_order

    was_training = model.training
    model.eval().to(device)
    source, feats = as_images(x), []
    with torch.no_grad():
        for xb in source.batches(in_order(len(source), batch_size), device):
            feats.append(model.features(xb).cpu())
        features = torch.cat(feats) if feats else torch.zeros(0, model.dim)
        logits = head_logits(model, features)
    model.train(was_training)
    return features.numpy().astype(np.float32), logits.numpy().astype(np.float64)


def head_logits(model: Any, features: Any) -> Any:
    """The head applied to features, as ``PreForgettableViT.forward`` does (a test checks
    that both agree), so features and logits come from one backbone pass."""
    import torch

    if hasattr(model, "head_logits"):  # the independent mode's Gaussians (design section 17)
        return model.head_logits(features)
    if not model.class_ids:
        return features.new_zeros((features.shape[0], 0))
    rows = torch.stack([model.heads[str(c)].detach().cpu() for c in model.class_ids])
    return features @ rows[:, :-1].T + rows[:, -1]
