"""RMIA, the relative membership-inference attack (Zarifzadeh et al., ICML 2024), offline.

docs/design.md section 15. For a target sample x and a population sample z the attack
compares likelihood ratios ``LR(x) = p(x | target) / p(x)`` and ``LR(z)``; the score of x
is the share of population samples z with ``LR(x) / LR(z) > gamma``. ``p(.)`` is a
model's softmax probability of the true label (the scores' ``confidence``; a class with
no logit column gets ``EPS``). ``p(x)`` averages reference models: offline, every
reference is OUT for the targets, and the paper's linear interpolation
``p(x) = ((1 + a) * p_out(x) + (1 - a)) / 2`` approximates the IN/OUT average; ``a`` is
chosen on a held-out pair of reference models (one attacked with the other as its
reference). Population samples are non-members: each non-member target is scored
against the *other* half of the non-members (two-fold), members against all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.audit import roc
from engine.audit.scores import EPS, sample_stats

GAMMA = 1.0
A_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 11))


def probabilities(logits: np.ndarray, class_ids: Sequence[int], labels: np.ndarray
                  ) -> np.ndarray:
    """Each sample's true-label probability, at least ``EPS``."""
    return np.maximum(sample_stats(logits, class_ids, labels)["confidence"], EPS)


def marginal(refs: np.ndarray, a: float) -> np.ndarray:
    """Offline ``p(x)`` from OUT reference probabilities ``refs`` (K, N)."""
    p_out = np.asarray(refs, float).reshape(-1, np.shape(refs)[-1]).mean(axis=0)
    return np.maximum(((1.0 + a) * p_out + (1.0 - a)) / 2.0, EPS)


def scores(p_x: np.ndarray, refs_x: np.ndarray, p_z: np.ndarray, refs_z: np.ndarray,
           a: float, gamma: float = GAMMA) -> np.ndarray:
    """Per target x: the share of population z with ``LR(x) / LR(z) > gamma``."""
    lr_x = np.log(p_x) - np.log(marginal(refs_x, a))
    lr_z = np.sort(np.log(p_z) - np.log(marginal(refs_z, a)))
    if len(lr_z) == 0:
        raise ValueError("RMIA needs population samples")
    below = np.searchsorted(lr_z, lr_x - np.log(gamma), side="left")
    return below / len(lr_z)


def halves(n: int, seed: int) -> np.ndarray:
    """A seeded boolean split of ``n`` non-members into two folds."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng([seed, 31]).permutation(n)[: n // 2]] = True
    return mask


def attack(p_m: np.ndarray, refs_m: np.ndarray, p_n: np.ndarray, refs_n: np.ndarray,
           a: float, fold: np.ndarray, gamma: float = GAMMA
           ) -> tuple[np.ndarray, np.ndarray]:
    """``(member scores, non-member scores)``: members against every non-member, each
    non-member against the other fold (a sample never serves as its own population)."""
    refs_m, refs_n = np.atleast_2d(refs_m), np.atleast_2d(refs_n)
    member = scores(p_m, refs_m, p_n, refs_n, a, gamma)
    nonmember = np.empty(len(p_n))
    for side in (fold, ~fold):
        nonmember[side] = scores(p_n[side], refs_n[:, side], p_n[~side], refs_n[:, ~side],
                                 a, gamma)
    return member, nonmember


Pair = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def choose_a(pairs: Sequence[Pair], seed: int = 0, grid: Sequence[float] = A_GRID
             ) -> tuple[float, dict[str, float]]:
    """The ``a`` of the grid with the highest mean AUC over held-out pairs, and that AUC
    for every ``a``. A pair ``(p_m, refs_m, p_n, refs_n)`` is one reference model attacked
    with another that is OUT for every sample: its own members ``p_m`` (IN for it, OUT for
    the other) against non-members ``p_n`` (OUT for both), as the paper simulates the
    attack. Two models that learned the same samples are no such pair (section 15)."""
    if not pairs:
        raise ValueError("choosing a needs a pair of reference models")
    curve = {}
    for a in grid:
        aucs = [roc.summarize(*attack(p_m, refs_m, p_n, refs_n, a,
                                      halves(len(p_n), seed)))["auc"]
                for p_m, refs_m, p_n, refs_n in pairs]
        curve[f"{a:g}"] = round(float(np.mean(aucs)), 4)
    best = max(grid, key=lambda a: (curve[f"{a:g}"], -abs(a - 0.5)))
    return float(best), curve
