"""Pseudonym: a data subject's corruption that lets a fine-tuned model meet the person as a
stranger (docs/design.md section 14).

A model that never trained on a person still reads their name and answers in the usual
form, with plausible facts of its own. Ablating the model's recall of the person (
engine.guard.recall) gets close but leaves it unsure where a stranger's model is sure of
its guesses, which the membership attacks and TOFU's truth ratio see. A pseudonym gives
the fine-tuned model exactly the stranger's situation: each part of the person's name is
replaced, before the model reads the prompt, by an invented name it never trained on, and
the invented name is written back as the person's in the answer. The model answers about
someone it has never met; the operator reads the person's name.

The invented names are drawn from a seeded syllable generator (the seed is the person's
name, so a rebuilt rule draws the same ones), never from words of the corpus, never a
common word, and each spells with as many tokens as the part it replaces (with and
without a leading space), so that length-normalised scores compare; of a few such
candidates the rule keeps the one the fine-tuned model copies intact most often into its
answers to the person's questions (``best_copied``). A prompt that names
none of the name's parts gets the recall ablation instead (a description of the person
has no name to replace). Weights are unchanged.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Pseudonyms", "best_copied", "choose_pseudonyms", "names_person", "pseudonymise",
           "restore"]

Pseudonyms = tuple[tuple[str, str], ...]  # (part of the person's name, invented part)

_ONSETS = ("b", "br", "c", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kl", "l", "m",
           "n", "p", "pr", "r", "s", "sk", "st", "t", "th", "tr", "v", "w", "z")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "io")
_CODAS = ("", "", "n", "r", "l", "s", "m", "th", "nd", "rt", "v", "x", "st", "ll", "nn",
          "rk", "lt", "b", "d", "g", "k")
TRIES = 20000
CANDIDATES = 6  # pseudonyms tried for the one the model copies best


def _invented(rng: random.Random) -> str:
    syllables = rng.choice((1, 2, 2, 3))
    word = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                   for _ in range(syllables))
    return word[0].upper() + word[1:]


def _shape(tokenizer: Any, word: str) -> tuple[int, int]:
    """Tokens the word takes after a space and at the start of a text."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return count(" " + word), count(word)


def _usable(tokenizer: Any, word: str, taken: set[str]) -> bool:
    if len(word) < 3 or word.lower() in taken:
        return False
    return _shape(tokenizer, word.lower())[0] > 1  # a one-token lowercase word is common


def _invent_for(tokenizer: Any, part: str, rng: random.Random, taken: set[str]) -> str:
    """An invented word shaped like ``part`` in tokens (the nearest shape if none is)."""
    want, best, best_gap = _shape(tokenizer, part), "", None
    for _ in range(TRIES):
        word = _invented(rng)
        if not _usable(tokenizer, word, taken):
            continue
        shape = _shape(tokenizer, word)
        gap = abs(shape[0] - want[0]) + abs(shape[1] - want[1])
        if best_gap is None or gap < best_gap:
            best, best_gap = word, gap
        if gap == 0:
            break
    return best


def choose_pseudonyms(tokenizer: Any, person: str, avoid: Iterable[str] = (),
                      draw: int = 0, attempt: int = 0) -> Pseudonyms:
    """An invented replacement for each part of ``person``'s name (none of the words of
    ``avoid``, e.g. the whole corpus, and none of the name's own parts). The product uses
    draw 0; bench/subjects.py measures others to show the figures do not rest on one.
    ``attempt`` draws another candidate of the same draw (``best_copied``)."""
    parts = [p for p in re.split(r"\s+", person.strip()) if len(p) > 1]
    taken = {w.lower() for text in avoid for w in re.findall(r"\w+", text)}
    taken |= {p.lower() for p in parts}
    seed = person.strip() + (f"#{draw}" if draw else "") + (f"/{attempt}" if attempt else "")
    rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
    out = []
    for part in parts:
        word = _invent_for(tokenizer, part, rng, taken)
        taken.add(word.lower())
        out.append((part, word))
    return tuple(out)


def best_copied(lm: Any, person: str, questions: Sequence[str], avoid: Sequence[str],
                draw: int = 0, candidates: int = CANDIDATES, max_new_tokens: int = 16
                ) -> tuple[Pseudonyms, dict[str, Any]]:
    """Of ``candidates`` pseudonyms, the one the model copies intact most often into its
    answers to the person's ``questions`` (a model copies an unfamiliar name less
    faithfully than a familiar one, and a garbled copy would reach the operator's answer
    unrestored); the first that is copied every time ends the search."""
    from engine.guard.scoring import batch_answers

    best: tuple[int, Pseudonyms] | None = None
    tried = 0
    for attempt in range(candidates):
        pairs = choose_pseudonyms(lm.tokenizer, person, avoid, draw, attempt)
        invented = " ".join(new for _, new in pairs)
        answers = batch_answers(lm, [pseudonymise(q, pairs) for q in questions], max_new_tokens)
        copied = sum(invented in a for a in answers)
        tried += 1
        if best is None or copied > best[0]:
            best = (copied, pairs)
        if copied == len(questions):
            break
    assert best is not None
    return best[1], {"candidates_tried": tried, "copied": best[0], "asked": len(questions)}


def _cased(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    return word.lower() if template.islower() else word


def _swap(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Replace each ``old`` by ``new`` as whole words, keeping the case the text wrote,
    and an initial ("X.") before the replaced surname by the new initial."""
    if not pairs:
        return text
    surnames = [old for old, _ in pairs[1:]]
    for old, new in pairs[:1]:  # the first name's initial, where a surname follows
        if surnames:
            after = "|".join(re.escape(s) for s in surnames)
            text = re.sub(rf"(?<!\w){re.escape(old[0])}\.(?=\s+(?:{after})(?!\w))",
                          new[0] + ".", text)
    table = {old.lower(): new for old, new in pairs}
    pattern = r"(?<!\w)(" + "|".join(re.escape(old) for old, _ in
                                     sorted(pairs, key=lambda p: -len(p[0]))) + r")(?!\w)"
    return re.sub(pattern, lambda m: _cased(m.group(0), table[m.group(0).lower()]), text,
                  flags=re.IGNORECASE)


def pseudonymise(text: str, pseudonyms: Pseudonyms) -> str:
    """The text as the model reads it: the person's name parts replaced."""
    return _swap(text, list(pseudonyms))


def restore(text: str, pseudonyms: Pseudonyms) -> str:
    """The model's text as the operator reads it: the invented parts written back."""
    return _swap(text, [(new, old) for old, new in pseudonyms])


def names_person(text: str, pseudonyms: Pseudonyms) -> bool:
    """Does the text name a part of the person's name (so that a pseudonym applies)?"""
    return bool(pseudonyms) and pseudonymise(text, pseudonyms) != text
