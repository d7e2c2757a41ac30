"""Per-sample scores and ROC figures on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audit import roc
from engine.audit.scores import (
    EPS,
    MAX_LOGIT,
    MAX_LOSS,
    label_columns,
    logit_confidence,
    membership_scores,
    sample_stats,
)


def test_a_forgotten_class_has_confidence_zero_and_the_clipped_loss() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    stats = sample_stats(logits, class_ids=[0, 2], labels=np.array([0, 1, 2]))
    p0 = np.exp(2) / (np.exp(2) + 1)
    assert stats["confidence"][0] == pytest.approx(p0)
    assert stats["loss"][0] == pytest.approx(-np.log(p0))
    assert stats["confidence"][1] == 0.0 and stats["loss"][1] == pytest.approx(MAX_LOSS)
    assert MAX_LOSS == pytest.approx(-np.log(EPS))
    assert stats["confidence"][2] == pytest.approx(0.5)
    assert stats["entropy"][2] == pytest.approx(np.log(2))
    assert label_columns([0, 2], np.array([2, 1, 0])).tolist() == [1, -1, 0]


def test_losses_are_clipped_and_scores_point_at_members() -> None:
    stats = sample_stats(np.array([[0.0, 100.0], [5.0, 0.0]]), [0, 1], np.array([0, 0]))
    assert stats["loss"][0] == pytest.approx(MAX_LOSS)
    scores = membership_scores(stats)
    assert scores["loss"][1] > scores["loss"][0]
    assert scores["confidence"][1] > scores["confidence"][0]
    assert scores["entropy"][1] < scores["entropy"][0] + 1  # both defined, finite


def test_logit_confidence_is_stable_and_bounded() -> None:
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [500.0, -500.0, 0.0]])
    phi = logit_confidence(logits, [0, 1, 2], np.array([0, 1, 0]))
    p = np.exp(3) / (np.exp(3) + np.exp(1) + 1)
    assert phi[0] == pytest.approx(np.log(p / (1 - p)))
    assert phi[1] == pytest.approx(np.log(0.5))
    assert phi[2] == pytest.approx(MAX_LOGIT)
    assert logit_confidence(logits, [0, 2], np.array([1, 1, 1])).tolist() == [-MAX_LOGIT] * 3


@pytest.mark.parametrize("members,nonmembers,expected", [
    ([3.0, 4.0, 5.0], [0.0, 1.0, 2.0], 1.0),
    ([0.0, 1.0], [2.0, 3.0, 4.0], 0.0),
    ([1.0, 1.0, 1.0], [1.0, 1.0], 0.5),
    ([1.0, 3.0], [2.0, 0.0], 0.75),
])
def test_auc_of_known_orderings(members, nonmembers, expected) -> None:  # noqa: ANN001
    fpr, tpr = roc.roc_curve(np.array(members), np.array(nonmembers))
    assert roc.auc(fpr, tpr) == pytest.approx(expected)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0


def test_auc_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    m, n = rng.integers(0, 5, 300).astype(float), rng.integers(0, 4, 200).astype(float)
    fpr, tpr = roc.roc_curve(m, n)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[m, n])
    assert roc.auc(fpr, tpr) == pytest.approx(expected)


def test_tpr_at_low_fpr() -> None:
    members = np.r_[np.full(50, 10.0), np.zeros(50)]
    nonmembers = np.r_[np.full(1, 20.0), np.linspace(-1, 0.5, 999)]
    fpr, tpr = roc.roc_curve(members, nonmembers)
    assert roc.tpr_at_fpr(fpr, tpr, 0.001) == pytest.approx(0.5)  # one false positive allowed
    assert roc.tpr_at_fpr(fpr, tpr, 0.0) == 0.0
    summary = roc.summarize(members, nonmembers)
    assert set(summary) == {"auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr"}
    assert summary["tpr_at_1pct_fpr"] >= summary["tpr_at_0_1pct_fpr"]


def test_chart_points_are_downsampled_monotonic_and_log_safe() -> None:
    rng = np.random.default_rng(1)
    fpr, tpr = roc.roc_curve(rng.normal(1, 1, 5000), rng.normal(0, 1, 5000))
    points = roc.chart_points(fpr, tpr)
    linear, log = points["linear"], points["log"]
    assert len(linear["fpr"]) == roc.LINEAR_POINTS and len(log["fpr"]) == roc.LOG_POINTS
    assert np.all(np.diff(linear["tpr"]) >= 0) and np.all(np.diff(log["tpr"]) >= 0)
    assert min(log["fpr"]) >= roc.LOG_FLOOR and min(log["tpr"]) >= roc.LOG_FLOOR
    assert linear["tpr"][-1] == 1.0 and 0 <= linear["tpr"][0] <= 1


def test_histogram_counts_every_sample_on_shared_edges() -> None:
    h = roc.histogram(np.array([0.0, 1.0, 1.0]), np.array([0.5, 2.0]), bins=4)
    assert len(h["edges"]) == 5 and sum(h["members"]) == 3 and sum(h["non_members"]) == 2
    flat = roc.histogram(np.zeros(3), np.zeros(2))
    assert sum(flat["members"]) == 3


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        roc.roc_curve(np.array([np.nan]), np.array([0.0]))
    with pytest.raises(ValueError, match="at least one"):
        roc.roc_curve(np.array([]), np.array([0.0]))
