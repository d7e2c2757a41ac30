"""Intervals, RMIA and verdicts against noise on hand-made arrays (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audit import rmia, roc
from engine.audit.evidence import Figure, attack, rate, seed_figures
from engine.audit.intervals import Draws, interval, roc_draws, too_few
from engine.audit.verdicts import combine, judge, statistics


def test_weighted_roc_with_unit_weights_is_the_plain_summary() -> None:
    rng = np.random.default_rng(0)
    m, n = np.round(rng.normal(0.5, 1, 300), 1), np.round(rng.normal(0, 1, 1200), 1)
    got = roc_draws(m, n, np.ones((1, 300)), np.ones((1, 1200)))
    want = roc.summarize(m, n)
    for key, value in want.items():
        assert got[key][0] == pytest.approx(value)


def test_bootstrap_interval_covers_the_point_and_narrows_with_samples() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 2000):
        hits = rng.random(n) < 0.7
        draws = Draws.make(n, 0, seed=3)
        fig = rate(hits, np.ones(n, bool), draws.train)
        lo, hi = interval(fig.draws)
        assert lo <= fig.point <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_too_few_samples_omit_the_figure_with_a_reason() -> None:
    assert "1000 non-members" in too_few("tpr_at_0_1pct_fpr", 500, 360)
    assert too_few("tpr_at_1pct_fpr", 500, 360) is None
    assert "fewer than 20" in too_few("rate", 5)
    figs = attack(np.ones(5), np.zeros(5), np.ones((3, 5)), np.ones((3, 5)))
    assert figs["auc"].point is None and "fewer than 10" in figs["auc"].omitted


def test_rmia_separates_members_the_target_fits_better_than_its_references() -> None:
    rng = np.random.default_rng(2)
    refs_m, refs_n = rng.uniform(0.3, 0.7, (2, 400)), rng.uniform(0.3, 0.7, (2, 400))
    p_m = np.clip(refs_m.mean(0) + 0.2, 0, 1)  # the target fits its members better
    p_n = refs_n.mean(0)
    fold = rmia.halves(400, 0)
    member, nonmember = rmia.attack(p_m, refs_m, p_n, refs_n, 0.5, fold)
    assert roc.summarize(member, nonmember)["auc"] > 0.9
    same, other = rmia.attack(refs_m[0], refs_m[1:], refs_n[0], refs_n[1:], 0.5, fold)
    assert 0.4 < roc.summarize(same, other)["auc"] < 0.6
    a, curve = rmia.choose_a([(p_m, refs_m, p_n, refs_n)])
    assert a in rmia.A_GRID and curve[f"{a:g}"] == max(curve.values()) > 0.9


def test_rmia_a_is_not_chosen_on_two_models_that_learned_the_same_samples() -> None:
    """Two retrainings alike are no IN/OUT pair: attacked with each other, the AUC only
    moves monotonically with a, and the pick is an end of the grid (section 15)."""
    rng = np.random.default_rng(3)
    fit = rng.uniform(0.6, 1.0, 400)  # what both learned of their members
    twin_m, ref_m = np.clip(fit + rng.normal(0, 0.05, (2, 400)), 0.01, 1)
    twin_n, ref_n = rng.uniform(0.2, 0.9, (2, 400))
    a, curve = rmia.choose_a([(ref_m, twin_m, ref_n, twin_n)])
    values = [curve[f"{x:g}"] for x in rmia.A_GRID]
    assert a in (0.0, 1.0) and values in (sorted(values), sorted(values, reverse=True))


def test_rmia_offline_marginal_interpolates_towards_one() -> None:
    refs = np.array([[0.2, 0.0]])
    assert rmia.marginal(refs, 1.0).tolist() == pytest.approx([0.2, 1e-12])
    assert rmia.marginal(refs, 0.0).tolist() == pytest.approx([0.6, 0.5])


def _fig(point: float, spread: float, seed: int) -> Figure:
    rng = np.random.default_rng(seed)
    return Figure(point, point + rng.normal(0, spread, 200), 500)


def test_a_gap_within_the_floor_passes_beyond_it_fails_else_inconclusive() -> None:
    ref, twin = _fig(0.50, 0.001, 1), _fig(0.56, 0.001, 2)  # floor 0.06
    assert judge(_fig(0.51, 0.001, 3), ref, twin)["verdict"] == "pass"
    failed = judge(_fig(0.70, 0.001, 3), ref, twin)
    assert failed["verdict"] == "fail" and failed["beyond"] == pytest.approx(0.14, abs=1e-3)
    assert failed["beyond_ci"][0] <= failed["beyond"] <= failed["beyond_ci"][1]
    assert judge(_fig(0.55, 0.05, 3), ref, twin)["verdict"] == "inconclusive"
    none = judge(_fig(0.55, 0.01, 3), ref, None)
    assert none["verdict"] is None and "second retrain reference" in none["reason"]


def test_verdicts_combine_per_class_and_overall() -> None:
    assert combine(["pass", "pass", None]) == "pass"
    assert combine(["pass", "inconclusive"]) == "inconclusive"
    assert combine(["inconclusive", "fail"]) == "fail"
    assert combine([None]) is None
    ref, twin = _fig(0.5, 0.001, 1), _fig(0.52, 0.001, 2)
    stats = statistics({"a": _fig(0.5, 0.001, 3), "class:x:a": _fig(0.9, 0.001, 3)},
                       {"a": ref, "class:x:a": ref}, {"a": twin, "class:x:a": twin},
                       resamples=200, level=0.95)
    assert stats["verdict"]["verdict"] == "pass"
    assert stats["per_class"]["x"]["verdict"] == "fail"
    assert stats["verdict"]["classes"]["fail"] == 1
    assert stats["per_class"]["x"]["samples"] == 500


def test_relearn_interval_needs_three_seeds() -> None:
    two = seed_figures({"5": [0.1, 0.2, 0.3, 0.4]}, ["a", "b"], seeds=2)
    assert two["relearn.5"].point == pytest.approx(0.25)
    assert two["relearn.5"].draws is None and "3 seeds" in two["relearn.5"].omitted
    three = seed_figures({"5": [0.1, 0.2, 0.3]}, ["a"], seeds=3)
    assert three["class:a:relearn.5"].draws.shape == (200,)
