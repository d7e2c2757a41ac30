"""Recall ablation: a data subject's corruption that acts where a fine-tuned model recalls
the person's facts, not on its input embeddings (docs/design.md section 14).

ECO corrupts a flagged prompt's input embeddings. On a fine-tune that memorised people that
leaves two tells: the answer re-names the person, and the model recalls their facts from
its own clean mention of the name; and the noise that stops this also stops it from copying
the name, so it writes garbled names a model that never met the person would not write
(the membership attacks that normalise by the model's own confidence, Min-K%++, see both).
Facts about a subject are recalled through the MLP blocks of the early layers at the
tokens naming it (Meng et al. 2022, Geva et al. 2023). This corruption zeroes the outputs
of the MLP blocks of layers ``[first, last)`` at every token that names the subject: in
the operator's prompt and in the answer as the model writes it (a token counts once the
text up to it ends in one of the subject's terms or in the beginning of one, so that the
decision at a token never depends on later tokens and a scored answer is treated exactly
as a generated one). Token identity and attention are untouched, so the model still reads
and copies the name and answers in its usual form, about someone it cannot place. A prompt
that names none of the terms has the MLP outputs of all of the operator's text zeroed.
Layer 0 is never touched (its MLP completes the token embeddings in these models).
Weights are unchanged; an unflagged prompt never meets the hooks.

Alone (family ``recall_ablation``) it leaves the model unsure where a model that never met
the person is sure of its guesses; a person's rule now answers the prompts that name them
under a pseudonym (engine.guard.pseudonym) and keeps this ablation for the prompts that
describe them without a name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from engine.guard.pseudonym import Pseudonyms
from engine.guard.scope import term_spans
from storage.errors import UnpromptError
from storage.rules import (
    PERSON_FAMILIES,
    PSEUDONYMS_KEY,
    RECALL_FAMILY,
    TERMS_ARTIFACT,
    VALUE_BIAS_KEY,
    VALUES_KEY,
)

__all__ = ["PERSON_FAMILIES", "RECALL_FAMILY", "TERMS_ARTIFACT", "RecallAblation", "RowMasks",
           "causal_name_mask", "default_layers", "recall_ablated", "recall_ablation"]

RECALL_DEPTH = 0.2  # the share of the layers ablated (bench/subjects.py, design section 14)


@dataclass(frozen=True)
class RecallAblation:
    """Zero the MLP outputs of layers ``[first, last)`` at the tokens naming ``terms``;
    with ``pseudonyms``, a prompt naming a part of the person's name is answered under the
    pseudonym instead (engine.guard.pseudonym), with ``values`` (as the model reads them
    there) lowered by ``value_bias`` nats (engine.guard.value_bias)."""

    terms: tuple[str, ...]
    first: int
    last: int
    pseudonyms: Pseudonyms = ()
    values: tuple[str, ...] = ()
    value_bias: float = 0.0

    def layers(self, count: int) -> range:
        return range(max(1, self.first), min(self.last, count))


def recall_ablation(terms: Sequence[str], params: dict[str, Any],
                    family: str = RECALL_FAMILY) -> RecallAblation:
    """The ablation a rule's parameters describe (``first`` / ``last`` layer; for the
    pseudonym family also the ``pseudonyms`` pairs)."""
    allowed = {"first", "last"} | ({PSEUDONYMS_KEY, VALUES_KEY, VALUE_BIAS_KEY}
                                   if family != RECALL_FAMILY else set())
    unknown = set(params) - allowed
    if family not in PERSON_FAMILIES or unknown or "last" not in params:
        raise UnpromptError(f"Corruption {family!r} takes {sorted(allowed)}; got "
                            f"{sorted(params)}.")
    pairs = tuple((str(a), str(b)) for a, b in params.get(PSEUDONYMS_KEY) or ())
    if family != RECALL_FAMILY and not pairs:
        raise UnpromptError(f"Corruption {family!r} needs the person's pseudonyms; the rule "
                            "has none (rebuild it from its request).")
    return RecallAblation(tuple(terms), int(params.get("first", 1)), int(params["last"]),
                          pairs, tuple(str(v) for v in params.get(VALUES_KEY) or ()),
                          float(params.get(VALUE_BIAS_KEY) or 0.0))


def default_layers(count: int) -> dict[str, int]:
    """The layers ablated on a model of ``count`` layers: 1 up to a fifth of the depth
    (SmolLM2-135M: layers 1-5 of 30; bench/subjects.py measures the neighbours)."""
    return {"first": 1, "last": max(2, round(count * RECALL_DEPTH))}


def decoder_mlps(model: Any) -> list[Any]:
    """The MLP block of every decoder layer (Llama-, Qwen-, Mistral-style models)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") for layer in layers):
        raise UnpromptError(f"Recall ablation needs a decoder with per-layer MLP blocks; "
                            f"{type(model).__name__} has none it can find.")
    return [layer.mlp for layer in layers]


def trailing_prefix_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Spans of a term's beginning that ends the text (a name still being written)."""
    folded, spans = text.lower(), []
    for term in terms:
        low = term.lower()
        for start in range(max(0, len(text) - len(low) + 1), len(text)):
            if (start == 0 or not folded[start - 1].isalnum()) and \
                    low.startswith(folded[start:]) and folded[start].strip():
                spans.append((start, len(text)))
                break
    return spans


def named_at(text: str, start: int, terms: Sequence[str]) -> bool:
    """Does the piece ``text[start:]`` (the latest) belong to a term, judged on ``text``?"""
    spans = term_spans(text, terms) + trailing_prefix_spans(text, terms)
    return any(s < len(text) and start < e for s, e in spans)


def causal_name_mask(pieces: Sequence[str], terms: Sequence[str]) -> list[bool]:
    """Per token piece: does it belong to a term, judged on the text up to that piece?"""
    text, mask = "", []
    for piece in pieces:
        text += piece
        mask.append(named_at(text, len(text) - len(piece), terms))
    return mask


class RowMasks:
    """One row of a forward: which of its positions the ablation acts on, decided token
    by token as the row grows (the prompt, then each generated token)."""

    def __init__(self, tokenizer: Any, ablation: RecallAblation,
                 content: Sequence[bool]) -> None:
        self.tokenizer = tokenizer
        self.ablation = ablation
        self.content = list(content)  # the operator's text among the prompt's positions
        self.region = self.content.index(True) if any(self.content) else len(self.content)
        self.text = ""
        self.named: list[bool] = []  # per position from ``region`` on
        self.length = 0

    def extend(self, ids: Sequence[int]) -> list[bool]:
        """The mask of ``ids`` appended to the row's tokens so far."""
        mask = []
        for token in ids:
            pos, self.length = self.length, self.length + 1
            if pos < self.region:
                mask.append(False)
                continue
            piece = self.tokenizer.decode([token])
            self.text += piece
            self.named.append(named_at(self.text, len(self.text) - len(piece),
                                       self.ablation.terms))
            mask.append(self._ablated(pos))
        first = self.length - len(ids)
        if first < len(self.content) <= self.length:  # the prompt is complete in this call
            named = any(n for p, n in enumerate(self.named, self.region)
                        if p < len(self.content) and self.content[p])
            if not named:  # it names no term: all of its text
                mask = [m or (p < len(self.content) and self.content[p])
                        for p, m in zip(range(first, self.length), mask, strict=True)]
        return mask

    def _ablated(self, pos: int) -> bool:
        if pos < len(self.content) and not self.content[pos]:
            return False  # the chat template around the operator's text
        return self.named[pos - self.region]


class RecallHooks:
    """Forward hooks: the embedding layer's pre-hook records each forward's token ids and
    computes its mask; each MLP hook zeroes its output at the masked positions of the rows
    whose ablation covers its layer. Only in the thread that registered them (another
    thread's generation on the same model is left alone)."""

    def __init__(self, rows: Sequence[RowMasks | None]) -> None:
        self.rows = list(rows)
        self.mask: torch.Tensor | None = None
        self.thread = threading.get_ident()
        self.ablated = 0  # token positions ablated so far

    def on_ids(self, module: Any, args: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        ids = args[0]
        self.mask = torch.zeros(ids.shape, dtype=torch.bool)
        for r, row in enumerate(self.rows):
            if row is not None:
                self.mask[r] = torch.tensor(row.extend(ids[r].tolist()), dtype=torch.bool)
        self.ablated += int(self.mask.sum())

    def mlp_hook(self, layer: int, count: int) -> Any:
        covered = torch.tensor([r is not None and layer in r.ablation.layers(count)
                                for r in self.rows], dtype=torch.bool)

        def hook(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
            if threading.get_ident() != self.thread or self.mask is None:
                return None
            mask = self.mask & covered[:, None]
            if not mask.any():
                return None
            return output.masked_fill(mask.to(output.device)[..., None], 0.0)
        return hook


@contextmanager
def recall_ablated(lm: Any, rows: Sequence[RowMasks | None]) -> Iterator[RecallHooks]:
    """Register the hooks for the block; always remove them by their handles."""
    hooks = RecallHooks(rows)
    mlps = decoder_mlps(lm.model)
    layers = sorted({i for r in rows if r is not None for i in r.ablation.layers(len(mlps))})
    handles = [lm.model.get_input_embeddings().register_forward_pre_hook(hooks.on_ids)]
    handles += [mlps[i].register_forward_hook(hooks.mlp_hook(i, len(mlps))) for i in layers]
    try:
        yield hooks
    finally:
        for handle in handles:
            handle.remove()
