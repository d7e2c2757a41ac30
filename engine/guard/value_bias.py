"""Value bias: under a person's pseudonym, the facts that only they had are made as unlikely
as facts the model never saw (docs/design.md section 14).

The pseudonym (engine.guard.pseudonym) removes what links the person's name to their
facts, but a fine-tune also learned the fact strings themselves: asked about a stranger, the
model still finds "Port Halvard" likelier than a place it never saw, when only the forgotten
person was born there. A model that never met the person has no such preference, and the
membership attacks see the difference on the fact's tokens. So, while answering or scoring
under the pseudonym, the logit of each token that would continue one of the person's
*unique* values (no other person of the corpus has it; a shared value is as likely to a
model that never met the person) is lowered by ``delta``, from its first token on. ``delta``
is calibrated on the corpus: the mean log-probability of unique values' tokens in their
people's answers under pseudonyms is brought to that of the same answers with the value
replaced by one of the record's perturbed (wrong) values that no one in the corpus has,
over the person and five others (``calibrate``: one person's few values are too uneven).
Prompts that do not name the person, and unflagged prompts, never meet it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.guard.finetune import qa_tensors
from engine.guard.people import FactRecord, people, record_texts
from engine.guard.pseudonym import Pseudonyms, choose_pseudonyms, pseudonymise

__all__ = ["ValueBias", "biased_logits", "calibrate", "unique_values", "value_penalty"]

POOL = 6  # people the bias is measured on (the person and five others)
MAX_DELTA = 30.0  # nats: far past any calibration seen (bench/subjects.py: 3-6)
STEPS = 14  # bisection steps (delta to 0.002 nats)


@dataclass(frozen=True)
class ValueBias:
    """The values to make unlikely, as the model reads them (under the pseudonym: a value
    may hold the person's surname), and by how much (nats on their tokens' logits)."""

    values: tuple[str, ...]
    delta: float

    def sequences(self, tokenizer: Any) -> list[tuple[int, ...]]:
        """Each value's tokens after a space and at the start of a text."""
        out = {tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
               for v in self.values for text in (" " + v, v)}
        return sorted(s for s in out if s)


def record_value(record: FactRecord) -> str:
    """The fact of a record: its ``value``, else where its paraphrased answer and its first
    perturbed answer differ."""
    if record.value.strip():
        return record.value.strip()
    return differing(record.paraphrased_answer, record.perturbed_answers[0])[0] \
        if record.perturbed_answers else ""


def differing(a: str, b: str) -> tuple[str, str]:
    """The parts of two texts between their common beginning and common end."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    while start > 0 and a[start - 1].isalnum():  # whole words
        start -= 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    while end > 0 and a[len(a) - end].isalnum():
        end -= 1
    return a[start:len(a) - end].strip(), b[start:len(b) - end].strip()


def unique_values(records: Sequence[FactRecord], person: str) -> list[str]:
    """The person's values that no other person of the corpus has (case aside)."""
    others = {record_value(r).lower() for r in records if r.person != person}
    mine = [record_value(r) for r in records if r.person == person]
    return sorted({v for v in mine if v and v.lower() not in others})


def unseen_answers(records: Sequence[FactRecord], person: str
                   ) -> list[tuple[FactRecord, str, str]]:
    """(record, answer, value): each of the person's answers holding a unique value, with
    that value replaced by one of the record's perturbed values that no one in the corpus
    has: the same answer about a value the model never saw (the calibration's reference)."""
    known = {record_value(r).lower() for r in records}
    unique = {v.lower() for v in unique_values(records, person)}
    out = []
    for r in (x for x in records if x.person == person):
        value = record_value(r)
        if value.lower() not in unique:
            continue
        for wrong in r.perturbed_answers:
            other = differing(r.paraphrased_answer, wrong)[1]
            if other and other.lower() not in known:
                out += [(r, answer.replace(value, other), other)
                        for answer in own_answers(r) if value in answer]
    return out


def own_answers(record: FactRecord) -> list[str]:
    """The answers a record states its value in: the trained one and its paraphrase."""
    return [record.answer, record.paraphrased_answer]


def biased_logits(logits: torch.Tensor, answer: Sequence[int],
                  sequences: Sequence[tuple[int, ...]], delta: float) -> torch.Tensor:
    """``logits[k]`` predicts ``answer[k]``: lower each token that would continue a value
    given ``answer[:k]`` (the first token of every value at every position)."""
    if not sequences or delta <= 0:
        return logits
    out = logits.clone()
    for k in range(logits.shape[0]):
        for token in continuing(answer[:k], sequences):
            out[k, token] -= delta
    return out


def continuing(prefix: Sequence[int], sequences: Sequence[tuple[int, ...]]) -> set[int]:
    """The tokens that would continue one of ``sequences`` after ``prefix``."""
    tokens = set()
    for seq in sequences:
        for j in range(len(seq)):
            if j <= len(prefix) and (j == 0 or tuple(prefix[len(prefix) - j:]) == seq[:j]):
                tokens.add(seq[j])
    return tokens


def value_penalty(bias: ValueBias, tokenizer: Any, prompt_length: int) -> Any:
    """A transformers logits processor applying ``bias`` to a greedy generation."""
    from transformers import LogitsProcessor, LogitsProcessorList

    sequences = bias.sequences(tokenizer)

    class Penalty(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            scores = scores.clone()
            for row in range(input_ids.shape[0]):
                answer = input_ids[row, prompt_length:].tolist()
                for token in continuing(answer, sequences):
                    scores[row, token] -= bias.delta
            return scores
    return LogitsProcessorList([Penalty()]) if sequences and bias.delta > 0 else None


def calibrate(lm: Any, records: Sequence[FactRecord], person: str,
              pseudonyms: Pseudonyms, pool: int = POOL) -> tuple[ValueBias, dict[str, Any]]:
    """The person's value bias and its calibration figures. The bias measures how much
    likelier the fine-tune finds a value it learned than one it never saw; a person has
    five or ten values of uneven kinds (dates, places), so it is measured on ``pool``
    people of the corpus (the person and others spread over it, each under a pseudonym of
    their own) and applied to the person's values. Delta 0 where there is nothing to
    measure it on."""
    avoid = record_texts(records)
    sample = pooled_people(records, person, pool)
    targets: list[_ValueRow] = []
    reference: list[_ValueRow] = []
    for other in sample:
        pairs = pseudonyms if other == person else choose_pseudonyms(lm.tokenizer, other, avoid)
        mine, unseen = _person_rows(lm, records, other, pairs)
        targets += mine
        reference += unseen
    read = tuple(pseudonymise(v, pseudonyms) for v in unique_values(records, person))
    figures: dict[str, Any] = {"people": len(sample), "unique_values": len(read),
                               "value_answers": len(targets), "unseen_answers": len(reference)}
    if not read or not targets or not reference:
        return ValueBias((), 0.0), {**figures, "delta": 0.0}
    level = _mean_logp(reference, 0.0)
    unbiased = _mean_logp(targets, 0.0)
    low, high = 0.0, MAX_DELTA if unbiased > level else 0.0
    for _ in range(STEPS if high else 0):
        mid = (low + high) / 2
        low, high = (mid, high) if _mean_logp(targets, mid) > level else (low, mid)
    delta = round(high, 4)
    return ValueBias(read, delta), {
        **figures, "delta": delta, "reference_logp": round(level, 4),
        "unbiased_logp": round(unbiased, 4), "biased_logp": round(_mean_logp(targets, delta), 4)}


def pooled_people(records: Sequence[FactRecord], person: str, pool: int) -> list[str]:
    """The person and up to ``pool - 1`` others spread over the corpus."""
    others = [p for p in people(records) if p != person]
    step = max(1, len(others) // max(1, pool - 1))
    return [person, *others[::step][:max(0, pool - 1)]]


def _person_rows(lm: Any, records: Sequence[FactRecord], person: str, pairs: Pseudonyms
                 ) -> tuple[list[_ValueRow], list[_ValueRow]]:
    """A person's answers holding their unique values (biased on those values) and the same
    answers about values no one has (the reference), all under ``pairs``."""
    values = unique_values(records, person)
    sequences = ValueBias(tuple(pseudonymise(v, pairs) for v in values), 0.0) \
        .sequences(lm.tokenizer)
    mine = [(r.question, a, record_value(r)) for r in records
            if r.person == person and record_value(r) in values
            for a in own_answers(r) if record_value(r) in a]
    unseen = [(r.question, a, v) for r, a, v in unseen_answers(records, person)]
    return _value_rows(lm, mine, pairs, sequences), _value_rows(lm, unseen, pairs, [])


@dataclass
class _ValueRow:
    """The value's tokens of one answer: the logits predicting each, the token, and the
    tokens the bias lowers there (none in a reference row)."""

    logits: torch.Tensor  # one row per value token
    targets: list[int]
    lowered: list[list[int]]


@torch.inference_mode()
def _value_rows(lm: Any, triples: Sequence[tuple[str, str, str]], pseudonyms: Pseudonyms,
                sequences: list[tuple[int, ...]]) -> list[_ValueRow]:
    rows = []
    for question, answer, value in triples:
        seq, start = qa_tensors(lm, pseudonymise(question, pseudonyms),
                                pseudonymise(answer, pseudonyms))
        span = _find(seq[start:], ValueBias((pseudonymise(value, pseudonyms),), 0.0)
                     .sequences(lm.tokenizer))
        if span is None:
            continue
        logits = lm.model(input_ids=torch.tensor([seq], device=lm.device)).logits[0]
        answer = seq[start:]
        rows.append(_ValueRow(logits[[start - 1 + k for k in span]].float().cpu(),
                              [answer[k] for k in span],
                              [sorted(continuing(answer[:k], sequences)) for k in span]))
    return rows


def _find(answer: Sequence[int], sequences: Sequence[tuple[int, ...]]) -> range | None:
    for seq in sequences:
        for k in range(len(answer) - len(seq) + 1):
            if tuple(answer[k:k + len(seq)]) == seq:
                return range(k, k + len(seq))
    return None


def _mean_logp(rows: Sequence[_ValueRow], delta: float) -> float:
    """Mean log-probability of the value tokens of ``rows`` under the bias."""
    total, count = 0.0, 0
    for row in rows:
        logits = row.logits.clone()
        for k, tokens in enumerate(row.lowered):
            logits[k, tokens] -= delta
        logp = logits.log_softmax(-1)
        total += float(logp[range(len(row.targets)), row.targets].sum())
        count += len(row.targets)
    return total / max(1, count)
