"""Knowledge scores (docs/design.md sections 5 and 6).

A greedy answer *knows* an example when it contains one of the example's key terms
(case-insensitive, as a whole word). The knowledge score after guarding is measured on the
prompts the unguarded model answers correctly; its target is the score of an *ignorant*
reference: the same model asked about an invented saga it cannot know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from engine.background import Gate, Stopwatch, in_background, still
from engine.guard.hook import Corruption, corrupted_answer
from engine.guard.lm import LoadedLM, timed_answer
from engine.guard.rules import Example, load_ignorant_prompts
from engine.jobs import CancelToken, Progress

AnswerJob = Generator[Progress, None, "list[Answered]"]


def contains_key(answer: str, keys: Sequence[str]) -> bool:
    """Whether ``answer`` contains one of ``keys`` as a whole word, ignoring case."""
    for key in keys:
        pattern = re.escape(key.strip())
        if key[:1].isalnum():
            pattern = r"(?<!\w)" + pattern
        if key[-1:].isalnum():
            pattern += r"(?!\w)"
        if key.strip() and re.search(pattern, answer, flags=re.IGNORECASE):
            return True
    return False


@dataclass
class Answered:
    """One greedy answer with whether it is correct and how long it took."""

    prompt: str
    answer: str
    correct: bool | None
    seconds: float


def answer_examples(lm: LoadedLM, examples: Sequence[Example], max_new_tokens: int,
                    corruption: Corruption | None = None, cancel: CancelToken | None = None,
                    label: str = "answering") -> AnswerJob:
    """Job: answer every example (corrupting every prompt when ``corruption`` is given).

    Each generation runs in a background thread (engine.background), so the job reaches a
    progress point every fraction of a second even while one answer takes seconds."""
    results: list[Answered] = []
    for i, example in enumerate(examples):
        if cancel is not None:
            cancel.check()
        gate = Gate()
        waiting = still(Progress(i / max(len(examples), 1), f"{label} {i + 1}/{len(examples)}"))
        text, seconds = yield from in_background(
            partial(_answer, lm, example.prompt, max_new_tokens, corruption, gate), waiting, gate)
        correct = contains_key(text, example.keys) if example.keys else None
        results.append(Answered(example.prompt, text, correct, seconds))
        yield Progress((i + 1) / max(len(examples), 1), f"{label} {i + 1}/{len(examples)}")
    return results


def _answer(lm: LoadedLM, prompt: str, max_new_tokens: int, corruption: Corruption | None,
            gate: Gate) -> tuple[str, float]:
    """One answer and the seconds it took (memoised when unguarded)."""
    if corruption is None:
        return timed_answer(lm, prompt, max_new_tokens, gate)
    watch = Stopwatch(gate)
    text = corrupted_answer(lm, prompt, corruption, max_new_tokens, gate.checkpoint)
    return text, watch.seconds()


@dataclass
class KnowledgeScore:
    """Share of ``evaluated`` prompts answered correctly."""

    score: float | None
    correct: int
    evaluated: int
    prompts: list[str] = field(default_factory=list)  # the prompts answered correctly

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def knowledge_of(answers: Sequence[Answered]) -> KnowledgeScore:
    """The knowledge score of answers that have a key (others are ignored)."""
    scored = [a for a in answers if a.correct is not None]
    right = [a.prompt for a in scored if a.correct]
    return KnowledgeScore(len(right) / len(scored) if scored else None, len(right), len(scored),
                          right)


def keyed(examples: Sequence[Example]) -> list[Example]:
    """The examples that have a key term, so that knowledge can be scored on them."""
    return [e for e in examples if e.keys]


def ignorant_level(lm: LoadedLM, max_new_tokens: int,
                   cancel: CancelToken | None = None) -> Generator[Progress, None, KnowledgeScore]:
    """Job: the knowledge score of the model on the invented saga (cached per model)."""
    cache_key = f"ignorant:{max_new_tokens}"
    if cache_key not in lm.cache:
        answers = yield from answer_examples(lm, load_ignorant_prompts(), max_new_tokens,
                                             cancel=cancel, label="ignorant reference")
        lm.cache[cache_key] = knowledge_of(answers)
    return lm.cache[cache_key]


def knowledge_after(lm: LoadedLM, known: Sequence[Example], make: Callable[[float], Corruption],
                    sigma: float, max_new_tokens: int,
                    cancel: CancelToken | None = None) -> Generator[Progress, None, float]:
    """Job: share of ``known`` examples still answered correctly with the prompt corrupted."""
    answers = yield from answer_examples(lm, known, max_new_tokens, make(sigma), cancel,
                                         label=f"sigma {sigma:.4f}")
    return knowledge_of(answers).score or 0.0
