"""The forward hook that corrupts a flagged prompt's input embeddings (ECO,
docs/design.md section 6).

The hook sits on ``model.get_input_embeddings()``, is registered for one generation and removed
by its own handle (other hooks on the module are left alone). It acts on the prompt pass only,
and only in the thread that registered it (a job suspended mid-generation, see
engine.background, may share the model with an interleaved job's generations):
the first forward of ``generate`` embeds the whole prompt; later decode steps embed one new
token each and pass through untouched. Only the operator's own text is corrupted, never the
chat template around it; a rule whose corruption names the subject's terms corrupts only
the tokens naming them (engine.guard.scope, docs/design.md section 14). A data subject's rule
answers a prompt naming them under a pseudonym (engine.guard.pseudonym, with the value bias
of engine.guard.value_bias) and ablates their recall otherwise (engine.guard.recall).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from engine.guard.lm import EncodedPrompt, LoadedLM, encode_prompt, generate_text
from engine.guard.pseudonym import names_person, pseudonymise, restore
from engine.guard.recall import RecallAblation, RowMasks, recall_ablated
from engine.guard.scope import prompt_mask
from engine.guard.value_bias import ValueBias, value_penalty
from storage.errors import UnpromptError

Corruption = Callable[[torch.Tensor], torch.Tensor]


class PromptPassCorruptor:
    """Forward hook: corrupts the masked positions of the first forward's embeddings."""

    def __init__(self, corruption: Corruption, mask: torch.Tensor) -> None:
        self.corruption = corruption
        self.mask = mask
        self.calls = 0
        self.corrupted = 0
        self.thread = threading.get_ident()

    def __call__(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != self.thread:
            return None  # another thread's generation on the same model: not this prompt
        self.calls += 1
        if self.calls > 1 or output.shape[-2] != self.mask.numel():
            return None
        mask = self.mask.to(output.device)
        corrupted = output.clone()
        corrupted[..., mask, :] = self.corruption(output[..., mask, :])
        self.corrupted += 1
        return corrupted


@contextmanager
def corrupted_prompt_pass(lm: LoadedLM, corruption: Corruption,
                          mask: torch.Tensor) -> Iterator[PromptPassCorruptor]:
    """Register the hook for the duration of the block; always remove it by its handle."""
    hook = PromptPassCorruptor(corruption, mask)
    handle = lm.model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()


def corrupted_answer(lm: LoadedLM, prompt: str | EncodedPrompt, corruption: Corruption,
                     max_new_tokens: int, checkpoint: Callable[[], None] | None = None) -> str:
    """Greedy answer with the prompt's embeddings corrupted on the prompt pass (the
    tokens the corruption's scope picks: engine.guard.scope)."""
    encoded = encode_prompt(lm, prompt) if isinstance(prompt, str) else prompt
    if isinstance(corruption, RecallAblation):
        text = prompt if isinstance(prompt, str) else operator_text(lm, encoded)
        if names_person(text, corruption.pseudonyms):
            return pseudonym_answer(lm, text, corruption, max_new_tokens, checkpoint)
        return recall_ablated_answer(lm, encoded, corruption, max_new_tokens, checkpoint)
    mask = prompt_mask(lm, encoded, prompt if isinstance(prompt, str) else None, corruption)
    with corrupted_prompt_pass(lm, corruption, mask) as hook:
        text = generate_text(lm, encoded, max_new_tokens, checkpoint)
    if hook.corrupted != 1:  # never hand out an unguarded answer to a flagged prompt
        raise UnpromptError(f"The guard could not corrupt the prompt in {lm.name}: its first "
                            "forward pass did not embed the prompt as expected.")
    return text


def operator_text(lm: LoadedLM, encoded: EncodedPrompt) -> str:
    """The operator's text of an encoded prompt (the chat template left out)."""
    return lm.tokenizer.decode(encoded.input_ids[0][encoded.content_mask].tolist())


def pseudonym_answer(lm: LoadedLM, prompt: str, ablation: RecallAblation, max_new_tokens: int,
                     checkpoint: Callable[[], None] | None = None) -> str:
    """Greedy answer to the prompt with the person's name under its pseudonym and their
    unique values lowered (engine.guard.value_bias), the pseudonym written back as the
    person's name (engine.guard.pseudonym)."""
    encoded = encode_prompt(lm, pseudonymise(prompt, ablation.pseudonyms))
    penalty = value_penalty(ValueBias(ablation.values, ablation.value_bias), lm.tokenizer,
                            encoded.input_ids.shape[1])
    text = generate_text(lm, encoded, max_new_tokens, checkpoint, penalty)
    return restore(text, ablation.pseudonyms)


def recall_ablated_answer(lm: LoadedLM, encoded: EncodedPrompt, ablation: RecallAblation,
                          max_new_tokens: int,
                          checkpoint: Callable[[], None] | None = None) -> str:
    """Greedy answer with the subject's recall ablated at every token naming them, in the
    prompt and in the answer as it is written (engine.guard.recall)."""
    rows = [RowMasks(lm.tokenizer, ablation, encoded.content_mask.tolist())]
    with recall_ablated(lm, rows) as hooks:
        text = generate_text(lm, encoded, max_new_tokens, checkpoint)
    if hooks.ablated < 1:  # never hand out an unguarded answer to a flagged prompt
        raise UnpromptError(f"The guard could not ablate the subject's recall in {lm.name}: "
                            "no token of the prompt was ablated.")
    return text
