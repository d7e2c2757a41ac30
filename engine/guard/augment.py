"""Augmenting a rule's examples so that its classifier holds on the way people actually ask
(docs/design.md section 6.2).

A rule's prompts come from one writer; users ask with other names, other words and other
languages. From what the rule already holds (its prompts, their short answers) and what it
may declare (``aliases``: a name and the other names it goes by; ``terms``: the topic's
names; ``neighbour_terms``: names of the topics next to it), this builds more prompts:
each prompt with every alias in place of the name, term questions in English and the
languages the encoder reads best after it, and a few framings ("Quick question: ...").
Every augmentation that is not about the topic's names is applied to the negatives too, so
the head learns names and subjects, never a template or a language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

TERM_TEMPLATES = ("Tell me about {t}.", "What do you know about {t}?",
                  "Explain {t} in a few sentences.", "Who or what is {t}?",
                  "Parle-moi de {t}.", "¿Qué sabes de {t}?", "Was weißt du über {t}?",
                  "Cosa sai di {t}?")
FRAMES = ("Quick question: {p}", "{p} Keep it short.", "I was wondering, {p}",
          "Can you tell me this? {p}")
MAX_ANSWER_WORDS = 4  # a short answer is a name of the topic; a longer one is a sentence


def alias_variants(prompts: Iterable[str], aliases: dict[str, Sequence[str]]) -> list[str]:
    """Each prompt again with every alias in place of each name it contains (whole words,
    any case); prompts naming none of the names give nothing."""
    out: list[str] = []
    for prompt in prompts:
        for name, others in aliases.items():
            pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
            if pattern.search(prompt):
                out += [_tidy(pattern.sub(lambda _m, a=alias: a, prompt)) for alias in others]
    return _unique(out)


def _tidy(prompt: str) -> str:
    """"the the boy wizard" (an alias with an article after one) -> "the boy wizard"."""
    return re.sub(r"\b(the) the\b", r"\1", prompt, flags=re.IGNORECASE)


def term_prompts(terms: Iterable[str], every: int = 1, offset: int = 0) -> list[str]:
    """Questions about each term, one template per term in turn (``every`` > 1 keeps one
    term in ``every``), so that every template and language meets many terms."""
    terms = _unique(t.strip() for t in terms if t.strip())
    return [TERM_TEMPLATES[(i + offset) % len(TERM_TEMPLATES)].format(t=t)
            for i, t in enumerate(terms) if i % every == 0] + \
           [TERM_TEMPLATES[(i + offset + 3) % len(TERM_TEMPLATES)].format(t=t)
            for i, t in enumerate(terms) if i % every == 0]


def framed(prompts: Sequence[str], every: int = 3) -> list[str]:
    """One prompt in ``every``, in one of the framings in turn."""
    out = []
    for i, prompt in enumerate(prompts[::every]):
        frame = FRAMES[i % len(FRAMES)]
        out.append(frame.format(p=prompt[:1].lower() + prompt[1:] if frame[0] != "{"
                                else prompt))
    return out


def short_answers(answers: Iterable[str]) -> list[str]:
    """Answers of at most ``MAX_ANSWER_WORDS`` words: names the topic's prompts lead to."""
    return _unique(a.strip().rstrip(".") for a in answers
                   if a.strip() and len(a.split()) <= MAX_ANSWER_WORDS)


def augment(positives: Sequence[str], negatives: Sequence[str], *,
            aliases: dict[str, Sequence[str]] | None = None, terms: Sequence[str] = (),
            neighbour_terms: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(positives, negatives) with their augmented prompts added, duplicates dropped and no
    prompt on both sides."""
    pos = [*positives, *alias_variants(positives, aliases or {}), *term_prompts(terms)]
    neg = [*negatives, *term_prompts(neighbour_terms, offset=1)]
    pos += framed(pos)
    neg += framed(neg)
    pos = _unique(pos)
    taken = set(pos)
    return pos, [n for n in _unique(neg) if n not in taken]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
