"""TOFU and MUSE figures for a model and a people corpus (docs/design.md section 14).

- truth ratio (TOFU, Maini et al. 2024): mean normalised probability of the perturbed
  (wrong) answers over that of the paraphrased answer; near 1 when the model cannot tell
  the fact from its perturbations, near 0 when it knows it;
- forget quality: p-value of the two-sample Kolmogorov-Smirnov test between the truth
  ratios of a model and of the retain model on the forgotten people's questions;
- model utility: harmonic mean of probability, ROUGE-L recall and the truth-ratio statistic
  mean(max(0, 1 - R)) on the other people's questions (TOFU also averages real authors and
  world facts; this corpus has neither);
- membership attacks (LOSS, zlib, Min-K%, Min-K%++) as ROC AUC of forgotten people's
  records against never-trained people's records, and MUSE's PrivLeak
  (AUC_model - AUC_retain) / AUC_retain (Shi et al. 2024).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import torch

from engine.guard.lm import LoadedLM
from engine.guard.people import FactRecord
from engine.guard.scoring import CorruptionFor, TokenScores, answer_scores, normalised_probability

MIN_K = 0.4  # the share of least likely tokens Min-K% and Min-K%++ average (MUSE: 0.4)
ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")


def truth_ratios(lm: LoadedLM, records: Sequence[FactRecord],
                 corruption_for: CorruptionFor | None = None) -> list[float]:
    """One truth ratio per record."""
    pairs, spans = [], []
    for r in records:
        spans.append((len(pairs), len(r.perturbed_answers)))
        pairs += [(r.question, r.paraphrased_answer)]
        pairs += [(r.question, p) for p in r.perturbed_answers]
    probs = [normalised_probability(s) for s in answer_scores(lm, pairs, corruption_for)]
    ratios = []
    for start, count in spans:
        wrong = sum(probs[start + 1:start + 1 + count]) / count
        ratios.append(wrong / max(probs[start], 1e-30))
    return ratios


def forget_quality(ratios: Sequence[float], retain_ratios: Sequence[float]) -> float:
    """KS-test p-value between two truth-ratio samples (1.0: indistinguishable)."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(list(ratios), list(retain_ratios)).pvalue)


def truth_stat(ratios: Sequence[float]) -> float:
    """TOFU's utility statistic on retained facts: mean of max(0, 1 - R)."""
    return sum(max(0.0, 1.0 - r) for r in ratios) / len(ratios)


def rouge_l_recall(candidate: str, reference: str) -> float:
    """ROUGE-L recall on lower-cased words: LCS length over the reference's length."""
    a, b = candidate.lower().split(), reference.lower().split()
    if not b:
        return 0.0
    row = [0] * (len(b) + 1)
    for word in a:
        prev = 0
        for j, ref in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if word == ref else max(row[j], row[j - 1])
    return row[-1] / len(b)


def harmonic_mean(values: Sequence[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def model_utility(lm: LoadedLM, records: Sequence[FactRecord], answers: Sequence[str],
                  corruption_for: CorruptionFor | None = None) -> dict[str, float]:
    """Utility figures on retained facts; ``answers`` are the model's generated answers."""
    scores = answer_scores(lm, [(r.question, r.answer) for r in records], corruption_for)
    prob = sum(normalised_probability(s) for s in scores) / len(scores)
    rouge = sum(rouge_l_recall(a, r.answer) for a, r in zip(answers, records, strict=True))
    rouge /= len(records)
    truth = truth_stat(truth_ratios(lm, records, corruption_for))
    return {"probability": prob, "rouge_l": rouge, "truth_ratio": truth,
            "model_utility": harmonic_mean([prob, rouge, truth])}


def attack_scores(scores: TokenScores, text: str) -> dict[str, float]:
    """Membership scores of one record (higher: more likely trained on)."""
    logp = scores.logp
    k = max(1, int(math.ceil(MIN_K * len(logp))))
    normed = (logp - scores.mu) / scores.sigma
    nll = -float(logp.sum())
    return {"loss": float(logp.mean()),
            "zlib": -nll / len(zlib.compress(text.encode())),
            "min_k": float(logp.sort().values[:k].mean()),
            "min_k_pp": float(normed.sort().values[:k].mean())}


def membership(lm: LoadedLM, members: Sequence[FactRecord], others: Sequence[FactRecord],
               corruption_for: CorruptionFor | None = None) -> dict[str, Any]:
    """ROC AUC of every attack telling ``members`` from ``others``; the ROC of Min-K%++."""
    from sklearn.metrics import roc_auc_score, roc_curve

    records = [*members, *others]
    scored = answer_scores(lm, [(r.question, r.answer) for r in records], corruption_for)
    rows = [attack_scores(s, r.answer) for s, r in zip(scored, records, strict=True)]
    labels = [1] * len(members) + [0] * len(others)
    auc = {a: float(roc_auc_score(labels, [row[a] for row in rows])) for a in ATTACKS}
    fpr, tpr, _ = roc_curve(labels, [row["min_k_pp"] for row in rows])
    return {"auc": auc, "roc_min_k_pp": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}}


def privleak(auc: float, retain_auc: float) -> float:
    """MUSE's PrivLeak: the relative gap of an AUC to the retain model's (0: no leak)."""
    return (auc - retain_auc) / retain_auc


def repetition(text: str, n: int = 3) -> float:
    """Share of repeated word n-grams in a text (0: none repeats; a loop tends to 1)."""
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def fact_stated(records: Sequence[FactRecord], answers: Sequence[str]) -> float | None:
    """Share of answers that state the record's fact (its value, case aside); None when no
    record carries its value. A model that never met the person states it by chance only."""
    pairs = [(r.value.lower(), a.lower()) for r, a in zip(records, answers, strict=True)
             if r.value]
    return sum(v in a for v, a in pairs) / len(pairs) if pairs else None


def perplexity(lm: LoadedLM, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """The (unguarded) model's perplexity of each answer given its question."""
    return [math.exp(-s.mean_logp) for s in answer_scores(lm, pairs)]


def histogram(values: Sequence[float], bins: int = 20, top: float = 2.0) -> dict[str, Any]:
    """A fixed-range histogram (for the truth-ratio charts)."""
    counts = torch.histc(torch.tensor([min(v, top) for v in values]), bins, 0.0, top)
    return {"edges": [top * i / bins for i in range(bins + 1)],
            "counts": [int(c) for c in counts]}
