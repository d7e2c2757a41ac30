"""Teacher-forced scores of answers given questions, with or without the guard
(docs/design.md section 14).

``answer_scores`` runs each (question, answer) pair through the model once and returns, per
pair, the log-probability of every answer token and the mean and standard deviation of the
log-probability under the model's own next-token distribution there (what Min-K%++ needs).
Where the guard flags the question, the flagging rule's corruption is applied to the
question's input embeddings exactly as ``engine.guard.hook`` does on the prompt pass of a
guarded generation (the operator's text, or the tokens naming the subject where the
rule says so; one row at a time), so a guarded score is the
score of the guarded model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from engine.guard.finetune import qa_tensors
from engine.guard.lm import LoadedLM, encode_prompt
from engine.guard.pseudonym import names_person, pseudonymise
from engine.guard.recall import RecallAblation, RowMasks, recall_ablated
from engine.guard.scope import prompt_mask
from engine.guard.value_bias import ValueBias, biased_logits

Corruption = Callable[[torch.Tensor], torch.Tensor]
CorruptionFor = Callable[[str], Corruption | None]  # question -> corruption, None: unflagged


@dataclass
class TokenScores:
    """Per answer token: log p(token), and the mean / std of log p over the vocabulary."""

    logp: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor

    @property
    def mean_logp(self) -> float:
        return float(self.logp.mean())


def answer_scores(lm: LoadedLM, pairs: Sequence[tuple[str, str]],
                  corruption_for: CorruptionFor | None = None,
                  batch_size: int = 16) -> list[TokenScores]:
    """Token scores of every pair's answer (the end-of-turn token included)."""
    out: list[TokenScores] = []
    for start in range(0, len(pairs), batch_size):
        out += _batch_scores(lm, pairs[start:start + batch_size], corruption_for)
    return out


@torch.inference_mode()
def _batch_scores(lm: LoadedLM, pairs: Sequence[tuple[str, str]],
                  corruption_for: CorruptionFor | None) -> list[TokenScores]:
    picked = [corruption_for(q) if corruption_for else None for q, _ in pairs]
    pairs, picked, biases = _under_pseudonyms(pairs, picked)
    encoded = [qa_tensors(lm, q, a) for q, a in pairs]
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (seq, _) in enumerate(encoded):
        ids[row, :len(seq)], mask[row, :len(seq)] = torch.tensor(seq), 1
    device = lm.device
    rows = [RowMasks(lm.tokenizer, c, encode_prompt(lm, q).content_mask.tolist())
            if isinstance(c, RecallAblation) else None
            for c, (q, _) in zip(picked, pairs, strict=True)]
    with recall_ablated(lm, rows) if any(rows) else nullcontext():
        embeds = _corrupted(lm, lm.model.get_input_embeddings()(ids.to(device)),
                            [q for q, _ in pairs], picked)
        logits = lm.model(inputs_embeds=embeds, attention_mask=mask.to(device)).logits.float()
    scores = []
    for row, (seq, start) in enumerate(encoded):
        rows_logits = logits[row, start - 1:len(seq) - 1]
        if biases[row] is not None:
            rows_logits = biased_logits(rows_logits, seq[start:],
                                        biases[row].sequences(lm.tokenizer), biases[row].delta)
        logprobs = rows_logits.log_softmax(-1)
        target = torch.tensor(seq[start:], device=device)
        probs = logprobs.exp()
        mu = (probs * logprobs).sum(-1)
        var = (probs * logprobs.square()).sum(-1) - mu.square()
        scores.append(TokenScores(logprobs.gather(-1, target[:, None])[:, 0].cpu(), mu.cpu(),
                                  var.clamp(min=1e-12).sqrt().cpu()))
    return scores


def _under_pseudonyms(pairs: Sequence[tuple[str, str]], picked: list[Any]
                      ) -> tuple[list[tuple[str, str]], list[Any], list[ValueBias | None]]:
    """Pairs whose question names a person with a pseudonym are scored as the guard
    answers them: question and answer under the pseudonym, the person's values biased,
    no other corruption (the guarded answer is the model's under the pseudonym with the
    name written back, so its probability is the model's of the pseudonymised answer)."""
    out_pairs, out_picked, biases = [], [], []
    for (q, a), c in zip(pairs, picked, strict=True):
        bias = None
        if isinstance(c, RecallAblation) and names_person(q, c.pseudonyms):
            bias = ValueBias(c.values, c.value_bias)
            q, a, c = pseudonymise(q, c.pseudonyms), pseudonymise(a, c.pseudonyms), None
        out_pairs.append((q, a))
        out_picked.append(c)
        biases.append(bias)
    return out_pairs, out_picked, biases


def _corrupted(lm: LoadedLM, embeds: torch.Tensor, questions: list[str],
               picked: list[Any]) -> torch.Tensor:
    """Each flagged row's question embeddings corrupted as the guard's hook would (a row
    whose rule ablates recall instead is left to ``recall_ablated``'s hooks)."""
    if all(c is None or isinstance(c, RecallAblation) for c in picked):
        return embeds
    embeds = embeds.clone()
    for row, (question, corruption) in enumerate(zip(questions, picked, strict=True)):
        if corruption is None or isinstance(corruption, RecallAblation):
            continue
        scope = prompt_mask(lm, encode_prompt(lm, question), question, corruption)
        positions = scope.nonzero()[:, 0].to(embeds.device)
        embeds[row, positions] = corruption(embeds[row:row + 1, positions])[0]
    return embeds


def normalised_probability(scores: TokenScores) -> float:
    """P(answer | question) ** (1 / tokens): TOFU's length-normalised probability."""
    return float(torch.exp(scores.logp.mean()))


def batch_answers(lm: LoadedLM, questions: Sequence[str], max_new_tokens: int = 32,
                  batch_size: int = 16) -> list[str]:
    """Greedy answers of the unguarded model, left-padded batches (the same text as
    ``lm.answer`` up to padding numerics)."""
    answers: list[str] = []
    for start in range(0, len(questions), batch_size):
        answers += _batch_generate(lm, questions[start:start + batch_size], max_new_tokens)
    return answers


@torch.inference_mode()
def _batch_generate(lm: LoadedLM, questions: Sequence[str], max_new_tokens: int) -> list[str]:
    from transformers import GenerationConfig

    rows = [encode_prompt(lm, q).input_ids[0].tolist() for q in questions]
    width = max(len(r) for r in rows)
    tok = lm.tokenizer
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r):], mask[i, width - len(r):] = torch.tensor(r), 1
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                              pad_token_id=tok.pad_token_id,
                              eos_token_id=lm.model.generation_config.eos_token_id
                              or tok.eos_token_id)
    out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                            generation_config=config)
    return [tok.decode(o[width:], skip_special_tokens=True).strip() for o in out]


def describe(scores: Sequence[TokenScores]) -> dict[str, Any]:
    """Mean normalised probability of a list of scores (for quick looks)."""
    values = [normalised_probability(s) for s in scores]
    return {"n": len(values), "mean_probability": sum(values) / max(1, len(values))}
