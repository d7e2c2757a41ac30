"""MIA-efficacy, distinguishability, offline LiRA and the linear probe on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audit.attacks import distinguishability, lira_offline, mia_efficacy
from engine.audit.probe import linear_probe
from engine.audit.roc import summarize


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
