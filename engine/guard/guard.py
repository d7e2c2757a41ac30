"""A guard: the active forget rules of one model and the prompt-time decision (ECO).

``guarded_answer`` classifies the prompt; a flagged prompt is answered with the flagging rule's
corruption applied to its input embeddings on the prompt pass; an unflagged prompt is answered
by the untouched model, with no hook registered at all.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.guard.classifier import Encoder, PromptClassifier, flags, load_sentence_encoder
from engine.guard.corruption import make_corruption
from engine.guard.hook import Corruption, corrupted_answer
from engine.guard.lm import LoadedLM, answer
from engine.guard.recall import PERSON_FAMILIES, recall_ablation
from engine.guard.scope import SCOPE_KEY, ScopedCorruption
from storage.errors import UnpromptError


@dataclass
class GuardRule:
    """One trained forget rule, as stored in a ForgetRule registry row."""

    name: str
    classifier: PromptClassifier
    threshold: float
    corruption: str
    corruption_params: dict[str, Any]
    sigma: float

    @classmethod
    def from_row(cls, row: dict[str, Any], classifier_bytes: bytes) -> GuardRule:
        """From a ForgetRule row's columns and the bytes of its classifier artifact."""
        return cls(row["name"], PromptClassifier.from_bytes(classifier_bytes),
                   float(row["threshold"]), row["corruption"],
                   dict(row.get("corruption_params") or {}), float(row["sigma"]))

    def corruption_fn(self) -> Corruption:
        """The rule's corruption with its token scope (the subject's names where the
        rule stores them: engine.guard.scope; all of the prompt's text otherwise)."""
        params = dict(self.corruption_params)
        terms = tuple(params.pop(SCOPE_KEY, None) or ())
        if self.corruption in PERSON_FAMILIES:
            return recall_ablation(terms, params, self.corruption)
        return ScopedCorruption(make_corruption(self.corruption, self.sigma, params), terms)


@dataclass
class Verdict:
    """The classifier's decision on one prompt."""

    flagged: bool
    score: float
    rule: GuardRule | None
    seconds: float


@dataclass
class Guard:
    """The active rules of a model and the sentence encoder they share."""

    rules: list[GuardRule] = field(default_factory=list)
    encoder: Encoder | None = None

    def classify(self, prompt: str) -> Verdict:
        """Flag ``prompt`` if any rule scores it strictly above its threshold (``flags``; the
        widest margin wins)."""
        started = time.perf_counter()
        if not self.rules:
            return Verdict(False, 0.0, None, time.perf_counter() - started)
        encoder = self.encoder or load_sentence_encoder()
        embedding = encoder([prompt])
        scored = [(float(r.classifier.scores(embedding)[0]), r) for r in self.rules]
        score, rule = max(scored, key=lambda sr: sr[0] - sr[1].threshold)
        flagged = bool(flags(score, rule.threshold))
        return Verdict(flagged, score, rule if flagged else None, time.perf_counter() - started)


@dataclass
class GuardedAnswer:
    """What `guard ask` reports for one prompt."""

    prompt: str
    flagged: bool
    score: float
    rule: str | None
    answer: str
    unguarded_answer: str | None = None
    guard_ms: float = 0.0
    answer_ms: float = 0.0
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.unguarded_answer is None:
            del data["unguarded_answer"]
        return data


def guarded_answer(lm: LoadedLM, guard: Guard, prompt: str, max_new_tokens: int = 64,
                   unguarded: bool = False) -> GuardedAnswer:
    """Answer ``prompt`` through the guard (and, if asked, without it for comparison)."""
    if not prompt or not prompt.strip():
        raise UnpromptError("The prompt is empty; type a question.")
    verdict = guard.classify(prompt)
    started = time.perf_counter()
    if verdict.flagged and verdict.rule is not None:
        text = corrupted_answer(lm, prompt, verdict.rule.corruption_fn(), max_new_tokens)
    else:
        text = answer(lm, prompt, max_new_tokens)
    answer_s = time.perf_counter() - started
    plain = answer(lm, prompt, max_new_tokens) if unguarded else None
    return GuardedAnswer(prompt, verdict.flagged, round(verdict.score, 6),
                         verdict.rule.name if verdict.rule else None, text, plain,
                         round(verdict.seconds * 1e3, 3), round(answer_s * 1e3, 3),
                         round((verdict.seconds + answer_s) * 1e3, 3))
