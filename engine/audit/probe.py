"""Residual knowledge by linear probe (numpy / scikit-learn; no torch).

A logistic regression is fitted on a model's CLS features of train samples of every
class, the forgotten ones included, and scored on test samples. If the features (with
the forgotten prompts removed) still separate a forgotten class, the probe finds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray,
                 test_features: np.ndarray, test_labels: np.ndarray,
                 forgotten: Sequence[int], names: Mapping[int, str],
                 seed: int = 0, samples: dict | None = None) -> dict[str, object]:
    """Probe test accuracy on the forgotten classes, the retained ones, and per class
    (``samples``, when given, receives the per-test-sample hits as ``probe_hit``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    probe = make_pipeline(StandardScaler(),
                          LogisticRegression(max_iter=500, C=1.0, random_state=seed))
    with threadpool_limits(1):  # BLAS threads fighting torch's cost 10x on small CPUs
        probe.fit(np.asarray(train_features, float), np.asarray(train_labels))
        hit = probe.predict(np.asarray(test_features, float)) == np.asarray(test_labels)
    if samples is not None:
        samples["probe_hit"] = hit
    forget = np.isin(test_labels, list(forgotten))
    return {"forget_accuracy": _mean(hit[forget]), "retain_accuracy": _mean(hit[~forget]),
            "per_class": {names[c]: _mean(hit[test_labels == c]) for c in names
                          if (test_labels == c).any()}}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0
