"""The per-rule prompt classifier: MiniLM sentence embeddings and a logistic-regression head,
joined by the margin of the nearest training examples (docs/design.md section 6.2).

The head is one weight vector and a bias (about 1.5 KB); a head trained since issue 18 also
keeps its training examples' embeddings (float16) for the nearest-example margin. Stored as
safetensors bytes with the encoder's name in the metadata, so an artifact never needs pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from engine.guard.calibration_sources import split_sources
from engine.guard.encoder import (  # noqa: F401 (re-exported: callers import them from here)
    ENCODER_HUB,
    ENCODER_PACKAGE,
    SentenceEncoder,
    load_sentence_encoder,
)
from engine.jobs import Progress, run_job
from storage.errors import UnpromptError

Encoder = Callable[[Sequence[str]], torch.Tensor]
MIN_FORGET_EXAMPLES = 5


NEAREST_K = 3  # examples per side in the nearest-example margin
LOGIT_SCALE, MARGIN_SCALE = 0.1, 5.0  # bring the two terms to comparable ranges (+-3)


@dataclass
class PromptClassifier:
    """Logistic regression on sentence embeddings: score = sigmoid(w . e + b). With the
    training examples' embeddings (``positives``, ``negatives``), score =
    sigmoid(0.1 (w . e + b) + 5 (mean top-3 cosine to positives - mean top-3 to
    negatives)): a prompt close to a few examples of either side follows them even where
    the linear head, fitted on all of them at once, is unsure."""

    weight: torch.Tensor
    bias: float
    encoder_name: str = ENCODER_HUB
    positives: torch.Tensor | None = None
    negatives: torch.Tensor | None = None

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.shape[-1] != self.weight.shape[0]:
            raise UnpromptError(f"The prompt classifier expects {self.weight.shape[0]}-dimensional "
                                f"embeddings from {self.encoder_name}, not "
                                f"{embeddings.shape[-1]}; retrain the rule.")
        logits = embeddings.float() @ self.weight + self.bias
        if self.positives is None or self.negatives is None:
            return torch.sigmoid(logits)
        margin = (_nearest(embeddings, self.positives) - _nearest(embeddings, self.negatives))
        return torch.sigmoid(LOGIT_SCALE * logits + MARGIN_SCALE * margin)

    def with_examples(self, pos: torch.Tensor, neg: torch.Tensor) -> PromptClassifier:
        """This head joined by the nearest-example margin to ``pos`` / ``neg`` (kept as
        float16, as they are stored)."""
        return PromptClassifier(self.weight, self.bias, self.encoder_name,
                                pos.half().float(), neg.half().float())

    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        tensors = {"weight": self.weight.contiguous(), "bias": torch.tensor([self.bias])}
        if self.positives is not None and self.negatives is not None:
            tensors |= {"positives": self.positives.half().contiguous(),
                        "negatives": self.negatives.half().contiguous()}
        return save(tensors, metadata={"format": "unprompt.prompt-classifier/1",
                                       "encoder": self.encoder_name})

    @classmethod
    def from_bytes(cls, data: bytes) -> PromptClassifier:
        from safetensors.torch import load

        try:
            tensors = load(bytes(data))
            meta = _metadata(bytes(data))
        except Exception as exc:
            raise UnpromptError("The stored prompt classifier is unreadable; retrain the rule."
                                ) from exc
        examples = [tensors[k].float() if k in tensors else None
                    for k in ("positives", "negatives")]
        return cls(tensors["weight"].float(), float(tensors["bias"][0]),
                   meta.get("encoder", ENCODER_HUB), *examples)


def _nearest(embeddings: torch.Tensor, examples: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity to the ``NEAREST_K`` most similar examples (all unit length)."""
    k = min(NEAREST_K, len(examples))
    return (embeddings.float() @ examples.T).topk(k, dim=1).values.mean(1)


def _metadata(data: bytes) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` (8-byte length, then JSON)."""
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}


def fit_head(pos: torch.Tensor, neg: torch.Tensor, l2: float = 1e-4,
             encoder_name: str = ENCODER_HUB) -> PromptClassifier:
    """Class-balanced, L2-regularised logistic regression by full-batch L-BFGS."""
    x = torch.cat([pos, neg]).double()
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()
    w_sample = torch.where(y > 0, 0.5 / len(pos), 0.5 / len(neg))
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x @ params[:-1] + params[-1]
        loss = (w_sample * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y, reduction="none")).sum() + l2 * params[:-1].pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    params = params.detach()
    return PromptClassifier(params[:-1].float(), float(params[-1]), encoder_name)


def flags(scores: torch.Tensor | float, threshold: float) -> Any:
    """The one flagging rule: a prompt is flagged when its score is strictly above the
    threshold (a score equal to it is not flagged); certificates say the same."""
    return scores > threshold


def calibrate_threshold(neg_scores: torch.Tensor, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on ``neg_scores`` stays <= target,
    under ``flags`` (strictly above)."""
    ranked = neg_scores.sort(descending=True).values
    allowed = math.floor(target_fpr * len(ranked) + 1e-9)
    return float(ranked[min(allowed, len(ranked) - 1)])


def margin_threshold(pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                     target_fpr: float) -> float:
    """Halfway between ``calibrate_threshold`` on the negatives and the lowest positive it
    flags: the same rates on the calibration split, and the widest margin on both sides
    for prompts unlike it (the threshold on the negatives alone sits on their edge)."""
    low = calibrate_threshold(neg_scores, target_fpr)
    caught = pos_scores[flags(pos_scores, low)]
    return low if len(caught) == 0 else (low + float(caught.min())) / 2


HELD_OUT_METHOD = "held-out calibration split"
WRITTEN_METHOD = "calibration split written apart, threshold at mid-margin"
CALIBRATION_SHARE = 0.25  # of each class, kept from the deployed head to calibrate it


@dataclass
class Calibration:
    """How the threshold was chosen: the deployed head's rates on the calibration split,
    which it never trained on (``n_positive`` / ``n_negative`` prompts); ``n_fit_*`` are the
    prompts it trained on. Rules trained before held-out calibration stored ``method``
    "k-fold out-of-fold scores" (other heads' scores; the deployed head saw every prompt)."""

    threshold: float
    target_fpr: float
    tpr: float
    fpr: float
    n_positive: int
    n_negative: int
    n_fit_positive: int
    n_fit_negative: int
    method: str = HELD_OUT_METHOD
    sources: dict[str, Any] | None = None  # written vs augmented (calibration_sources.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Split = tuple[Sequence[str], Sequence[str]]  # (positive, negative) prompts


def train_classifier(encoder: Encoder, positives: Sequence[str], negatives: Sequence[str],
                     target_fpr: float = 0.01, calibration_share: float = CALIBRATION_SHARE,
                     seed: int = 0, calibration: Split | None = None
                     ) -> tuple[PromptClassifier, Calibration]:
    """Fit the deployed head on the fit split only; calibrate its threshold on the
    calibration split's negatives, which it never saw, and measure its rates there.
    ``calibration``: prompts written apart from the examples to calibrate on instead (the
    head then fits on every example)."""
    return run_job(train_classifier_job(encoder, positives, negatives, target_fpr,
                                        calibration_share, seed, calibration))


def train_classifier_job(encoder: Encoder, positives: Sequence[str], negatives: Sequence[str],
                         target_fpr: float = 0.01, calibration_share: float = CALIBRATION_SHARE,
                         seed: int = 0, calibration: Split | None = None,
                         written: Split | None = None
                         ) -> Generator[Progress, None, tuple[PromptClassifier, Calibration]]:
    """Job: ``train_classifier``, with a progress point after every batch of embeddings.
    ``written``: the prompts among the examples that were not generated by augmentation
    (the calibration then records written / augmented counts, ``sources``)."""
    _check_examples(positives, negatives, target_fpr)
    total = len(positives) + len(negatives)
    pos = yield from embeddings(encoder, list(positives), 0, total)
    neg = yield from embeddings(encoder, list(negatives), len(pos), total)
    if calibration is not None and calibration[0] and calibration[1]:
        head, found = yield from _calibrated_apart(encoder, pos, neg, calibration, target_fpr)
        if written is not None:
            found.sources = split_sources(positives, negatives, written,
                                          (range(len(pos)), range(len(neg))),
                                          apart=(found.n_positive, found.n_negative))
        return head, found
    (fit_p, cal_p), (fit_n, cal_n) = calibration_split(len(pos), len(neg), calibration_share,
                                                       seed)
    head = fit_head(pos[fit_p], neg[fit_n], encoder_name=getattr(encoder, "name", ENCODER_HUB))
    pos_scores, neg_scores = head.scores(pos[cal_p]), head.scores(neg[cal_n])
    threshold = calibrate_threshold(neg_scores, target_fpr)
    calibration = Calibration(threshold, target_fpr, _rate(pos_scores, threshold),
                              _rate(neg_scores, threshold), len(cal_p), len(cal_n),
                              len(fit_p), len(fit_n))
    if written is not None:
        calibration.sources = split_sources(positives, negatives, written, (fit_p, fit_n),
                                            (cal_p, cal_n))
    yield Progress(1.0, "classifier fitted")
    return head, calibration


def _calibrated_apart(encoder: Encoder, pos: torch.Tensor, neg: torch.Tensor,
                      calibration: Split, target_fpr: float
                      ) -> Generator[Progress, None, tuple[PromptClassifier, Calibration]]:
    """Job: the head on every example, its threshold on the calibration split at mid-margin."""
    cal_p = yield from embeddings(encoder, list(calibration[0]))
    cal_n = yield from embeddings(encoder, list(calibration[1]))
    head = fit_head(pos, neg, encoder_name=getattr(encoder, "name", ENCODER_HUB))
    head = head.with_examples(pos, neg)
    pos_scores, neg_scores = head.scores(cal_p), head.scores(cal_n)
    threshold = margin_threshold(pos_scores, neg_scores, target_fpr)
    yield Progress(1.0, "classifier fitted")
    return head, Calibration(threshold, target_fpr, _rate(pos_scores, threshold),
                             _rate(neg_scores, threshold), len(cal_p), len(cal_n), len(pos),
                             len(neg), WRITTEN_METHOD)


ENCODE_BATCH = 64  # SentenceEncoder's own batch: the same embeddings as one call, same padding


def embeddings(encoder: Encoder, texts: list[str], done: int = 0, total: int | None = None
               ) -> Generator[Progress, None, torch.Tensor]:
    """Job: ``encoder(texts)`` a batch at a time, a progress point after each (a batch of
    MiniLM takes a fraction of a second on a CPU, all prompts of a rule several seconds);
    ``done`` of ``total`` texts were embedded before these."""
    total = total or len(texts)
    chunks = []
    for start in range(0, len(texts), ENCODE_BATCH):
        chunks.append(encoder(texts[start:start + ENCODE_BATCH]))
        count = done + min(start + ENCODE_BATCH, len(texts))
        yield Progress(0.9 * count / total, f"embedding the examples {count}/{total}")
    return torch.cat(chunks)


Rows = tuple[torch.Tensor, torch.Tensor]


def calibration_split(n_pos: int, n_neg: int, share: float = CALIBRATION_SHARE,
                      seed: int = 0) -> tuple[Rows, Rows]:
    """((fit, calibration) positive rows, (fit, calibration) negative rows), seeded and
    stratified; each part keeps at least one row of each class."""
    gen = torch.Generator().manual_seed(seed)
    return _rows(n_pos, share, gen), _rows(n_neg, share, gen)


def _rows(n: int, share: float, gen: torch.Generator) -> Rows:
    order = torch.randperm(n, generator=gen)
    n_cal = min(max(1, round(share * n)), n - 1)
    return order[n_cal:].sort().values, order[:n_cal].sort().values


def _rate(scores: torch.Tensor, threshold: float) -> float:
    return float(flags(scores, threshold).float().mean())


def _check_examples(positives: Sequence[str], negatives: Sequence[str], target_fpr: float) -> None:
    if not positives:
        raise UnpromptError("The rule has no forget examples; give at least "
                            f"{MIN_FORGET_EXAMPLES} prompts about the topic to forget.")
    if len(positives) < MIN_FORGET_EXAMPLES:
        raise UnpromptError(f"The rule has only {len(positives)} forget examples to train on; "
                            f"give at least {MIN_FORGET_EXAMPLES} prompts about the topic.")
    if any(not p.strip() for p in [*positives, *negatives]):
        raise UnpromptError("The rule contains an empty example prompt; remove blank lines.")
    if len(negatives) < 2:
        raise UnpromptError("The classifier needs at least two prompts not about the topic: "
                            "one to train on and one to calibrate its threshold.")
    if not 0.0 <= target_fpr < 1.0:
        raise UnpromptError("The target false-positive rate must be between 0 and 1.")
