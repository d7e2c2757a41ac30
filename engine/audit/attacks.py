"""Membership-inference attacks over score arrays (numpy / scikit-learn; no torch).

- threshold attacks (loss, confidence, entropy), overall and per class;
- MIA-efficacy as in SalUn / "Model Sparsity Can Simplify Machine Unlearning" (Jia et al.),
  and the same SVC on label-free features (top-1 confidence, entropy) for classes that
  have no logit column any more;
- forget distinguishability: forget-train vs forget-test;
- offline LiRA (Carlini et al., "Membership Inference Attacks From First Principles").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.audit.roc import summarize
from engine.audit.scores import ATTACKS

SVC_CAP = 2000  # samples per side for the efficacy SVC (an RBF SVC is quadratic in n)
FIXED_VARIANCE_BELOW = 16  # LiRA pools the variance over samples with fewer shadows


def threshold_attacks(members: Mapping[str, np.ndarray], nonmembers: Mapping[str, np.ndarray],
                      member_labels: np.ndarray, nonmember_labels: np.ndarray,
                      names: Mapping[int, str]) -> dict[str, dict]:
    """Each attack's AUC / TPR@FPR over all samples, and the same per class."""
    out = {}
    for attack in ATTACKS:
        m, n = members[attack], nonmembers[attack]
        per_class = {}
        for cid, name in names.items():
            own_m, own_n = m[member_labels == cid], n[nonmember_labels == cid]
            if len(own_m) and len(own_n):
                per_class[name] = summarize(own_m, own_n)
        out[attack] = {**summarize(m, n), "per_class": per_class}
    return out


def mia_efficacy(shadow_members: np.ndarray, shadow_nonmembers: np.ndarray,
                 targets: np.ndarray, seed: int = 0, cap: int = SVC_CAP) -> float:
    """Share of ``targets`` an RBF SVC on true-label confidence calls non-members.

    The SVC (C=3, gamma='auto', as in SalUn's ``SVC_MIA``) learns members (retained
    train) against non-members (test) on balanced, seeded subsamples of equal size.
    """
    return _svc_efficacy(np.asarray(shadow_members, float)[:, None],
                         np.asarray(shadow_nonmembers, float)[:, None],
                         np.asarray(targets, float)[:, None], seed, cap, scale=False)


def mia_efficacy_top1(shadow_members: np.ndarray, shadow_nonmembers: np.ndarray,
                      targets: np.ndarray, seed: int = 0, cap: int = SVC_CAP) -> float:
    """``mia_efficacy`` on label-free features: rows of (top-1 confidence, entropy) over
    the model's remaining classes (``scores.label_free_features``).

    A forgotten class has no logit column, so its true-label confidence is the constant 0
    and SalUn's figure can only call the whole class member or non-member. The top-1
    confidence and entropy still vary per sample: they show whether the model reacts to
    the forgotten images like to the train images it fitted or like to unseen test
    images. The features are standardised on the shadow samples before the RBF SVC.
    """
    return _svc_efficacy(np.asarray(shadow_members, float),
                         np.asarray(shadow_nonmembers, float),
                         np.asarray(targets, float), seed, cap, scale=True)


def is_degenerate(targets: np.ndarray) -> bool:
    """True when every target has the same feature (the SVC can only call all or none)."""
    values = np.asarray(targets, float)
    return bool(len(values) == 0 or np.all(values == values.flat[0]))


def _svc_efficacy(members: np.ndarray, nonmembers: np.ndarray, targets: np.ndarray,
                  seed: int, cap: int, scale: bool) -> float:
    return float(svc_calls(members, nonmembers, targets, seed, cap, scale).mean())


def svc_calls(members: np.ndarray, nonmembers: np.ndarray, targets: np.ndarray,
              seed: int = 0, cap: int = SVC_CAP, scale: bool = False) -> np.ndarray:
    """Per target, 1.0 where the efficacy SVC calls it a non-member (their mean is the
    MIA-efficacy; the intervals of ``engine.audit.evidence`` resample them)."""
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    if len(targets) == 0:
        raise ValueError("MIA-efficacy needs at least one forget sample")
    rng = np.random.default_rng(seed)
    size = min(len(members), len(nonmembers), cap)
    if size == 0:
        raise ValueError("MIA-efficacy needs shadow members and non-members")
    x_in = members[rng.choice(len(members), size, replace=False)]
    x_out = nonmembers[rng.choice(len(nonmembers), size, replace=False)]
    features = np.concatenate([x_in, x_out])
    if scale:
        centre, spread = features.mean(axis=0), features.std(axis=0)
        spread = np.where(spread > 1e-12, spread, 1.0)
        features, targets = (features - centre) / spread, (targets - centre) / spread
    labels = np.r_[np.ones(size), np.zeros(size)]
    with threadpool_limits(1):
        clf = SVC(C=3, gamma="auto", kernel="rbf").fit(features, labels)
        predicted = clf.predict(targets)
    return 1.0 - np.asarray(predicted, float)


def distinguishability(members: Mapping[str, np.ndarray], nonmembers: Mapping[str, np.ndarray]
                       ) -> tuple[float, dict[str, float]]:
    """Forget-train vs forget-test: the worst case over the threshold attacks of
    ``max(AUC, 1 - AUC)`` (0.5 = indistinguishable; an attacker may flip a rule),
    and each attack's plain AUC."""
    per_attack = {a: summarize(members[a], nonmembers[a])["auc"] for a in ATTACKS}
    worst = max(max(v, 1.0 - v) for v in per_attack.values())
    return worst, per_attack


def lira_offline(target: np.ndarray, shadows: np.ndarray, fixed_variance: bool | None = None
                 ) -> np.ndarray:
    """Offline LiRA: per sample, fit a Gaussian to the OUT shadows' logit-scaled
    confidences (``shadows`` is ``(K, N)``) and score how far the target model's
    confidence lies above it: ``Phi((target - mu_out) / sigma_out)``, in [0, 1],
    higher = more likely IN. With few shadows the variance is pooled over samples."""
    from scipy.special import ndtr

    shadows = np.asarray(shadows, dtype=np.float64)
    if shadows.ndim != 2 or shadows.shape[0] < 2:
        raise ValueError("offline LiRA needs at least two shadow models")
    mu = shadows.mean(axis=0)
    var = shadows.var(axis=0, ddof=1)
    pooled = shadows.shape[0] < FIXED_VARIANCE_BELOW if fixed_variance is None else fixed_variance
    sigma = np.sqrt(np.full_like(var, var.mean()) if pooled else var)
    return ndtr((np.asarray(target, dtype=np.float64) - mu) / np.maximum(sigma, 1e-6))
