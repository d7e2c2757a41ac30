"""Bootstrap confidence intervals for the audit figures (numpy / scipy; no torch).

docs/design.md section 15. One ``Draws`` object holds B seeded resamples (multinomial
counts) of the audit's train samples and of its test samples. Every model of an audit
(the audited one, its retrain reference, the second reference) is measured on the same
samples, so a figure is computed on the same resample for each of them: the gap
``model - reference`` gets a *paired* interval, far tighter than two separate ones.
A figure that rests on too few samples is not computed at all: ``too_few`` gives the
reason that the result states instead of a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 200  # resamples: enough for a 95% percentile interval to within ~1 point
LEVEL = 0.95
MIN_RATE = 20  # samples under an accuracy or a share
MIN_SIDE = 10  # members and non-members each under an AUC
TPR_FPRS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_0_1pct_fpr": 0.001}


@dataclass
class Draws:
    """Bootstrap weights: ``train`` is (B, n_train), ``test`` is (B, n_test)."""

    train: np.ndarray
    test: np.ndarray

    @classmethod
    def make(cls, n_train: int, n_test: int, seed: int = 0, b: int = BOOTSTRAP) -> Draws:
        rng = np.random.default_rng([seed, 12])
        return cls(_counts(rng, n_train, b), _counts(rng, n_test, b))


def _counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    if n == 0:
        return np.zeros((b, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)


def too_few(figure: str, n_members: int, n_nonmembers: int | None = None) -> str | None:
    """Why ``figure`` cannot be quoted on this many samples (None: it can).

    An accuracy or share needs ``MIN_RATE`` samples; an AUC ``MIN_SIDE`` members and
    non-members; a TPR at FPR f at least 1/f non-members, or the FPR f cannot even occur."""
    if n_nonmembers is None:
        if n_members < MIN_RATE:
            return f"rests on {n_members} samples, fewer than {MIN_RATE}"
        return None
    if min(n_members, n_nonmembers) < MIN_SIDE:
        return (f"rests on {n_members} members and {n_nonmembers} non-members, fewer than "
                f"{MIN_SIDE} on a side")
    fpr = TPR_FPRS.get(figure)
    if fpr is not None and n_nonmembers < math.ceil(1 / fpr):
        return (f"a TPR at {fpr:.1%} FPR needs at least {math.ceil(1 / fpr)} non-members, "
                f"this rests on {n_nonmembers}")
    return None


def interval(draws: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval ``[lo, hi]`` of bootstrap draws, rounded to 4 decimals."""
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(np.asarray(draws, float), [tail, 100 - tail])
    return [round(float(lo), 4), round(float(hi), 4)]


def rate_draws(hits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A share (e.g. accuracy) on each resample: ``weights`` is (B, n) over the hits."""
    total = weights.sum(axis=1)
    return (weights @ np.asarray(hits, float)) / np.maximum(total, 1e-12)


def roc_draws(members: np.ndarray, nonmembers: np.ndarray, wm: np.ndarray,
              wn: np.ndarray) -> dict[str, np.ndarray]:
    """AUC and TPR at 1% / 0.1% FPR on each resample (weights (B, n1) and (B, n0)).

    The weighted form of ``roc.summarize``: all-ones weights give exactly its figures
    (tied scores form one ROC point and count half in the AUC)."""
    from scipy import sparse

    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    uniq, inv = np.unique(np.r_[members, nonmembers], return_inverse=True)
    n1, groups = len(members), len(uniq)

    def per_group(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        onehot = sparse.csr_matrix((np.ones(len(idx)), (np.arange(len(idx)), idx)),
                                   shape=(len(idx), groups))
        return np.asarray((onehot.T @ w.T).T)

    pm, pn = per_group(wm, inv[:n1]), per_group(wn, inv[n1:])  # ascending scores
    tot_m, tot_n = pm.sum(1, keepdims=True), pn.sum(1, keepdims=True)
    below = np.cumsum(pn, axis=1) - pn
    auc = ((pm * (below + 0.5 * pn)).sum(1, keepdims=True) / (tot_m * tot_n)).ravel()
    tpr = np.cumsum(pm[:, ::-1], axis=1) / tot_m
    fpr = np.cumsum(pn[:, ::-1], axis=1) / tot_n
    out = {"auc": np.clip(auc, 0.0, 1.0)}
    for key, target in TPR_FPRS.items():
        out[key] = np.where(fpr <= target + 1e-12, tpr, 0.0).max(axis=1)
    return out


def ones(n: int) -> np.ndarray:
    """The weights of the point estimate (every sample once), shaped like one draw."""
    return np.ones((1, n))
