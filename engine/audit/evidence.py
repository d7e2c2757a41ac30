"""Every audit figure of one model with its bootstrap draws (numpy; no torch).

docs/design.md section 15. ``model_evidence`` turns one model's outputs on the audit
samples (and the per-sample outcomes ``measure`` left in ``samples``) into
``{figure: Figure}``: the point value, its B resampled values on the audit's shared
``Draws`` and the number of samples it rests on, or the reason it is omitted. Overall
figures are keyed by their path in the metrics (``threshold_attacks.loss.auc``);
per-class ones by ``class:<name>:<figure>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.audit.intervals import Draws, rate_draws, roc_draws, too_few
from engine.audit.measure import predictions
from engine.audit.outputs import AuditData, Outputs
from engine.audit.scores import ATTACKS, membership_scores, sample_stats

SUMMARY = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")


@dataclass
class Figure:
    """One figure of one model: point value and draws, or why it is omitted."""

    point: float | None
    draws: np.ndarray | None
    samples: int
    omitted: str | None = None


def rate(hits: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> Figure:
    """A share over the samples in ``mask`` (weights: the draws of their split)."""
    n = int(mask.sum())
    reason = too_few("rate", n)
    if reason:
        return Figure(None, None, n, reason)
    hits = np.asarray(hits, float)
    return Figure(float(hits[mask].mean()), rate_draws(hits[mask], weights[:, mask]), n)


def attack(members: np.ndarray, nonmembers: np.ndarray, wm: np.ndarray, wn: np.ndarray
           ) -> dict[str, Figure]:
    """AUC and TPR at 1% / 0.1% FPR of one attack, each omitted on too few samples."""
    n1, n0 = len(members), len(nonmembers)
    if too_few("auc", n1, n0):
        return {key: Figure(None, None, n1 + n0, too_few(key, n1, n0)) for key in SUMMARY}
    point = roc_draws(members, nonmembers, np.ones((1, n1)), np.ones((1, n0)))
    draws = roc_draws(members, nonmembers, wm, wn)
    out = {}
    for key in SUMMARY:
        reason = too_few(key, n1, n0)
        out[key] = Figure(None, None, n1 + n0, reason) if reason else Figure(
            float(point[key][0]), draws[key], n1 + n0)
    return out


def model_evidence(out: Outputs, data: AuditData, samples: dict[str, Any], draws: Draws,
                   rmia: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Figure]:
    """Every figure of one model (see the module docstring for the keys)."""
    train = membership_scores(sample_stats(out.train_logits, out.class_ids, data.train_y))
    test = membership_scores(sample_stats(out.test_logits, out.class_ids, data.test_y))
    attacks = {a: (train[a], test[a]) for a in ATTACKS}
    if rmia is not None:
        attacks["rmia"] = rmia
    f_tr, f_te = np.isin(data.train_y, data.forgotten), np.isin(data.test_y, data.forgotten)
    hit_tr = predictions(out.train_logits, out.class_ids) == data.train_y
    hit_te = predictions(out.test_logits, out.class_ids) == data.test_y
    wtr, wte = draws.train, draws.test
    figs = {"scorecard.forget_accuracy": rate(hit_tr, f_tr, wtr),
            "scorecard.retain_accuracy": rate(hit_tr, ~f_tr, wtr),
            "scorecard.test_accuracy": rate(hit_te, ~f_te, wte),
            "linear_probe.forget_accuracy": rate(samples["probe_hit"], f_te, wte)}
    for key in ("mia_efficacy", "mia_efficacy_top1"):
        calls = np.zeros(len(f_tr))
        calls[f_tr] = samples[key]
        figs[key] = rate(calls, f_tr, wtr)
    figs["forget_distinguishability_auc"] = _worst(
        {a: attack(m[f_tr], n[f_te], wtr[:, f_tr], wte[:, f_te])["auc"]
         for a, (m, n) in attacks.items() if a in ATTACKS})
    for name, (m, n) in attacks.items():
        prefix = "rmia" if name == "rmia" else f"threshold_attacks.{name}"
        for key, fig in attack(m, n, wtr, wte).items():
            figs[f"{prefix}.{key}"] = fig
    figs.update(_per_class(data, attacks, hit_te, samples["probe_hit"], draws))
    return figs


def _per_class(data: AuditData, attacks: dict[str, tuple[np.ndarray, np.ndarray]],
               hit_te: np.ndarray, probe_hit: np.ndarray, draws: Draws
               ) -> dict[str, Figure]:
    out = {}
    for cid, name in data.names.items():
        tr, te = data.train_y == cid, data.test_y == cid
        if not tr.any() and not te.any():
            continue
        at = f"class:{name}:"
        out[at + "test_accuracy"] = rate(hit_te, te, draws.test)
        out[at + "linear_probe"] = rate(probe_hit, te, draws.test)
        for a, (m, n) in attacks.items():
            for key, fig in attack(m[tr], n[te], draws.train[:, tr], draws.test[:, te]).items():
                out[f"{at}{a}.{key}"] = fig
    return out


def _worst(aucs: dict[str, Figure]) -> Figure:
    """Forget distinguishability: per resample, the worst ``max(AUC, 1 - AUC)``."""
    first = next(iter(aucs.values()))
    if any(f.omitted for f in aucs.values()):
        return Figure(None, None, first.samples, first.omitted)
    points = [max(f.point, 1 - f.point) for f in aucs.values()]
    stacked = np.stack([np.maximum(f.draws, 1 - f.draws) for f in aucs.values()])
    return Figure(max(points), stacked.max(axis=0), first.samples)


def seed_figures(runs: dict[str, list[float]], classes: Sequence[str], seeds: int,
                 seed: int = 0, b: int = 200) -> dict[str, Figure]:
    """Relearn accuracy per shot count, overall and per forgotten class, with draws over
    the relearn seeds (the same resampled seeds for every model: paired gaps).

    ``runs[n]`` lists accuracies in the order class-major, seed-minor (``relearn_job``)."""
    rng = np.random.default_rng([seed, 13])
    picks = rng.integers(0, seeds, size=(b, seeds))
    reason = None if seeds >= 3 else f"an interval over relearn seeds needs at least 3 " \
                                     f"seeds, this audit ran {seeds}"
    out = {}
    for n, values in runs.items():
        grid = np.asarray(values, float).reshape(len(classes), seeds)
        resampled = grid[:, picks]  # (classes, b, seeds)
        out[f"relearn.{n}"] = _seed_figure(grid, resampled.mean(axis=(0, 2)), reason)
        for i, name in enumerate(classes):
            out[f"class:{name}:relearn.{n}"] = _seed_figure(
                grid[i:i + 1], resampled[i].mean(axis=1), reason)
    return out


def _seed_figure(grid: np.ndarray, draws: np.ndarray, reason: str | None) -> Figure:
    return Figure(float(grid.mean()), None if reason else draws, int(grid.size), reason)
