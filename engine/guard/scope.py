"""Which prompt tokens a forget rule corrupts (docs/design.md section 14).

A rule built for a data subject with the name scope (``SUBJECT_SCOPE = "names"`` in
engine.guard.subject_rule; measured, not the default) corrupts only the tokens that name
the subject (their full name, first and last name, the corpus's aliases): the rest of the
question stays readable, so the model answers in the corpus's form about someone it cannot
identify. A prompt that does not name them (a description, a pronoun, a phrasing no term
matches) falls back to every token of the operator's text, as every other rule does. The
terms are stored in the rule's ``corruption_params`` under ``SCOPE_KEY``; a rule without
them corrupts all of the operator's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.guard.lm import EncodedPrompt, LoadedLM
from storage.rules import SCOPE_KEY  # corruption_params key of the names (absent: all text)

__all__ = ["ALL_TEXT", "NAME_TOKENS", "SCOPE_KEY", "ScopedCorruption", "prompt_mask",
           "subject_terms", "term_spans"]

ALL_TEXT = "all of the prompt's text"
NAME_TOKENS = "the tokens naming the subject (all text when the prompt names none)"
Corruption = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ScopedCorruption:
    """A corruption and the terms whose tokens it acts on (none: all of the text)."""

    fn: Corruption
    terms: tuple[str, ...] = ()

    def __call__(self, emb: torch.Tensor) -> torch.Tensor:
        return self.fn(emb)


def subject_terms(person: str, aliases: Iterable[str] = ()) -> list[str]:
    """The strings that name a person: full name, each part of it, and the aliases given
    (longest first, so that a full name is matched before its parts)."""
    parts = [p for p in re.split(r"\s+", person.strip()) if len(p) > 1]
    terms = {t.strip() for t in [person, *parts, *aliases] if t and len(t.strip()) > 1}
    return sorted(terms, key=lambda t: (-len(t), t))


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of every whole-word, case-insensitive occurrence of a term."""
    spans = []
    for term in terms:
        pattern = r"(?<!\w)" + re.escape(term) + r"(?!\w)"
        spans += [m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE)]
    return spans


def prompt_mask(lm: LoadedLM, encoded: EncodedPrompt, prompt: str | None,
                corruption: Any) -> torch.Tensor:
    """The positions of ``encoded`` to corrupt: the tokens naming the subject where the
    corruption has terms and the prompt contains one, else all of the operator's text
    (``prompt``: the operator's text; None: decoded from ``encoded``)."""
    terms = getattr(corruption, "terms", ())
    if not terms:
        return encoded.content_mask
    if prompt is None:
        prompt = lm.tokenizer.decode(encoded.input_ids[0][encoded.content_mask].tolist())
    named = name_token_mask(lm, prompt, terms)
    if named is None or not bool(named.any()):
        return encoded.content_mask
    content = encoded.content_mask.nonzero()[:, 0]
    if named.numel() != content.numel():  # not the tokens the guard encoded: all text
        return encoded.content_mask
    mask = torch.zeros_like(encoded.content_mask)
    mask[content] = named
    return mask


def name_token_mask(lm: LoadedLM, prompt: str, terms: Sequence[str]) -> torch.Tensor | None:
    """Per token of ``prompt`` (as the guard tokenizes it): does it overlap a term? None
    when the tokenizer gives no character offsets."""
    spans = term_spans(prompt, terms)
    try:
        offsets = lm.tokenizer(prompt, add_special_tokens=False,
                               return_offsets_mapping=True)["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        return None
    return torch.tensor([any(a < e and s < b for s, e in spans) for a, b in offsets],
                        dtype=torch.bool)
