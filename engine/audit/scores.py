"""Per-sample attack scores from logits (numpy; no torch).

A model's logits cover only its remaining classes (``class_ids``, in column order). For a
sample whose class has no column any more (a forgotten class) the model cannot predict
its label at all, so its true-label confidence is defined as 0 and its loss as
``-log(EPS)`` (the loss of a confidence clipped at ``EPS``). Every loss is clipped at the
same value, so a forgotten sample and a sample the model rejects with certainty tie.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-12
MAX_LOSS = float(-np.log(EPS))  # ~27.63
MAX_LOGIT = float(np.log((1 - EPS) / EPS))  # the logit-scaled confidence bound, ~27.63
ATTACKS = ("loss", "confidence", "entropy")


def label_columns(class_ids: Sequence[int], labels: np.ndarray) -> np.ndarray:
    """The logit column of each label, or -1 where the model has no such class."""
    labels = np.asarray(labels, dtype=np.int64)
    size = max([*class_ids, int(labels.max(initial=0))]) + 1
    lookup = np.full(size, -1, dtype=np.int64)
    lookup[list(class_ids)] = np.arange(len(class_ids))
    return lookup[labels]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    if z.shape[1] == 0:
        return z
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def sample_stats(logits: np.ndarray, class_ids: Sequence[int], labels: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """``loss``, ``confidence`` (true-label probability) and ``entropy`` per sample."""
    log_p = log_softmax(logits)
    cols = label_columns(class_ids, labels)
    known = cols >= 0
    true_log_p = np.full(len(cols), np.log(EPS))
    true_log_p[known] = log_p[np.flatnonzero(known), cols[known]]
    loss = np.minimum(-true_log_p, MAX_LOSS)
    confidence = np.where(known, np.exp(-loss), 0.0)
    entropy = -(np.exp(log_p) * log_p).sum(axis=1) if log_p.shape[1] else np.zeros(len(cols))
    return {"loss": loss, "confidence": confidence, "entropy": entropy}


def label_free_features(logits: np.ndarray) -> np.ndarray:
    """Rows of (top-1 softmax confidence, entropy) over the model's remaining classes:
    defined for every sample, whether or not its label still has a column."""
    log_p = log_softmax(logits)
    if log_p.shape[1] == 0:
        return np.zeros((len(log_p), 2))
    p = np.exp(log_p)
    return np.stack([p.max(axis=1), -(p * log_p).sum(axis=1)], axis=1)


def membership_scores(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Higher = "more likely a member" for each threshold attack."""
    return {"loss": -stats["loss"], "confidence": stats["confidence"],
            "entropy": -stats["entropy"]}


def logit_confidence(logits: np.ndarray, class_ids: Sequence[int], labels: np.ndarray
                     ) -> np.ndarray:
    """LiRA's logit-scaled confidence ``log(p / (1 - p))``, stable and clipped."""
    log_p = log_softmax(logits)
    cols = label_columns(class_ids, labels)
    known = np.flatnonzero(cols >= 0)
    out = np.full(len(cols), -MAX_LOGIT)
    if len(known):
        rows = log_p[known].copy()
        true = rows[np.arange(len(known)), cols[known]].copy()
        rows[np.arange(len(known)), cols[known]] = -np.inf
        rest = np.logaddexp.reduce(rows, axis=1) if rows.shape[1] > 1 else np.log(EPS)
        out[known] = true - np.maximum(rest, np.log(EPS))
    return np.clip(out, -MAX_LOGIT, MAX_LOGIT)
