"""MIA-efficacy, distinguishability, offline LiRA and the linear probe on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audit.attacks import (
    distinguishability,
    is_degenerate,
    lira_offline,
    mia_efficacy,
    mia_efficacy_top1,
)
from engine.audit.probe import linear_probe
from engine.audit.roc import summarize
from engine.audit.scores import label_free_features, sample_stats


def _confidences(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    members = np.clip(rng.normal(0.95, 0.04, 3000), 0, 1)  # retained train: confident
    nonmembers = np.clip(rng.normal(0.6, 0.25, 800), 0, 1)  # test: less so
    return members, nonmembers


def test_efficacy_is_full_when_the_forgotten_class_cannot_be_predicted() -> None:
    members, nonmembers = _confidences()
    assert mia_efficacy(members, nonmembers, np.zeros(200)) == 1.0


def test_efficacy_is_low_while_the_model_still_remembers() -> None:
    members, nonmembers = _confidences()
    remembered = np.clip(np.random.default_rng(5).normal(0.97, 0.02, 200), 0, 1)
    assert mia_efficacy(members, nonmembers, remembered) < 0.2


def test_efficacy_is_seeded_and_balanced() -> None:
    members, nonmembers = _confidences()
    targets = np.linspace(0, 1, 50)
    first = mia_efficacy(members, nonmembers, targets, seed=3)
    assert first == mia_efficacy(members, nonmembers, targets, seed=3)
    assert 0.0 <= first <= 1.0
    with pytest.raises(ValueError):
        mia_efficacy(members, nonmembers, np.array([]))


def _tiny_model(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights of a softmax regression with almost no regularisation: with more features
    than samples it memorises its (random) labels, i.e. it is deliberately overfit."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e4, max_iter=2000).fit(x, y)


def _random_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, 256)), rng.integers(0, 5, n)


def test_top1_efficacy_separates_the_members_of_an_overfit_model() -> None:
    rng = np.random.default_rng(0)
    (x_tr, y_tr), (x_te, _) = _random_set(rng, 300), _random_set(rng, 300)
    model = _tiny_model(x_tr, y_tr)
    assert model.score(x_tr, y_tr) == 1.0  # memorised
    train = label_free_features(model.decision_function(x_tr))
    test = label_free_features(model.decision_function(x_te))
    members_out = mia_efficacy_top1(train[:150], test[:150], train[150:])
    unseen_out = mia_efficacy_top1(train[:150], test[:150], test[150:])
    assert members_out < 0.1 and unseen_out - members_out > 0.4


def test_top1_efficacy_cannot_tell_sets_apart_that_the_model_never_saw() -> None:
    rng = np.random.default_rng(1)
    model = _tiny_model(*_random_set(rng, 300))
    feats = label_free_features(model.decision_function(_random_set(rng, 2400)[0]))
    members, nonmembers, as_train, as_test = np.split(feats, 4)
    called = [mia_efficacy_top1(members, nonmembers, t) for t in (as_train, as_test)]
    assert abs(called[0] - called[1]) < 0.1  # chance: both sets are called alike


def test_salun_efficacy_is_degenerate_for_a_class_without_a_column() -> None:
    rng = np.random.default_rng(2)
    (x_tr, y_tr), (x_te, y_te) = _random_set(rng, 300), _random_set(rng, 300)
    logits = _tiny_model(x_tr, y_tr).decision_function
    kept = [0, 1, 2, 3]  # class 4 forgotten: its prompt and head row are gone
    train = sample_stats(logits(x_tr)[:, kept], kept, y_tr)["confidence"]
    test = sample_stats(logits(x_te)[:, kept], kept, y_te)["confidence"]
    gone = y_tr == 4
    assert is_degenerate(train[gone]) and not is_degenerate(train[~gone])
    assert mia_efficacy(train[~gone], test[y_te != 4], train[gone]) in (0.0, 1.0)
    top1 = label_free_features(logits(x_tr)[:, kept])[gone]
    assert not is_degenerate(top1[:, 0]) and not is_degenerate(top1[:, 1])


def test_label_free_features_are_top1_confidence_and_entropy() -> None:
    feats = label_free_features(np.array([[0.0, 0.0], [10.0, -10.0]]))
    assert feats.shape == (2, 2)
    assert feats[0] == pytest.approx([0.5, np.log(2)])
    assert feats[1, 0] == pytest.approx(1.0) and feats[1, 1] < 1e-6
    assert label_free_features(np.zeros((3, 0))).shape == (3, 2)


def test_distinguishability_is_worst_case_and_half_for_identical_sets() -> None:
    rng = np.random.default_rng(2)
    same = {a: rng.normal(size=2000) for a in ("loss", "confidence", "entropy")}
    other = {a: rng.normal(size=2000) for a in ("loss", "confidence", "entropy")}
    worst, per_attack = distinguishability(same, other)
    assert 0.5 <= worst < 0.55 and set(per_attack) == {"loss", "confidence", "entropy"}
    flipped = {**other, "entropy": other["entropy"] + 3.0}  # non-members score *higher*
    worst, per_attack = distinguishability(same, flipped)
    assert per_attack["entropy"] < 0.1 and worst > 0.9


def test_lira_finds_members_that_sit_above_their_out_distribution() -> None:
    rng = np.random.default_rng(3)
    n, k = 400, 8
    mu = rng.normal(0, 2, n)  # every sample has its own difficulty
    shadows = mu + rng.normal(0, 0.5, (k, n))
    is_member = np.arange(n) < n // 2
    target = mu + rng.normal(0, 0.5, n) + np.where(is_member, 1.5, 0.0)
    scores = lira_offline(target, shadows)
    assert 0 <= scores.min() and scores.max() <= 1
    assert summarize(scores[is_member], scores[~is_member])["auc"] > 0.9
    blind = mu + rng.normal(0, 0.5, n)
    same = lira_offline(blind, shadows)
    assert abs(summarize(same[is_member], same[~is_member])["auc"] - 0.5) < 0.08
    per_sample = lira_offline(target, shadows, fixed_variance=False)
    assert per_sample.shape == (n,)
    with pytest.raises(ValueError, match="two shadow"):
        lira_offline(target, shadows[:1])


def test_linear_probe_finds_a_separable_forgotten_class_and_not_a_hidden_one() -> None:
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 200)
    centres = np.array([[0, 0, 0, 0], [4, 0, 0, 0], [0, 4, 0, 0]], float)
    feats = centres[labels] + rng.normal(0, 0.5, (600, 4))
    names = {0: "a", 1: "b", 2: "c"}
    found = linear_probe(feats[::2], labels[::2], feats[1::2], labels[1::2], [2], names)
    assert found["forget_accuracy"] > 0.95 and set(found["per_class"]) == {"a", "b", "c"}
    hidden = feats.copy()
    hidden[labels == 2] = centres[0] + rng.normal(0, 0.5, (200, 4))  # class c looks like a
    lost = linear_probe(hidden[::2], labels[::2], hidden[1::2], labels[1::2], [2], names)
    assert lost["forget_accuracy"] < 0.75 and lost["retain_accuracy"] > 0.6
