"""Training a forget rule: classifier, threshold, corruption strength (docs/design.md section 6).

``train_rule_job`` is a job (engine/jobs.py): it yields Progress, honours its CancelToken and
returns a ``TrainedRule`` holding everything a ForgetRule registry row needs. It touches no
registry: storing the classifier bytes as an artifact and writing the row is the caller's part.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.background import in_background, loading
from engine.guard.augment import augment, short_answers
from engine.guard.classifier import (
    Encoder,
    PromptClassifier,
    Split,
    load_sentence_encoder,
    train_classifier_job,
)
from engine.guard.corruption import DEFAULT_CORRUPTION, corruption_family, make_corruption
from engine.guard.guard import GuardRule
from engine.guard.jobutil import rounded, scaled
from engine.guard.knowledge import answer_examples, ignorant_level, keyed, knowledge_after
from engine.guard.lm import LoadedLM
from engine.guard.rules import RuleSpec, load_general_prompts
from engine.guard.zo import ZOResult, zo_search
from engine.jobs import CancelToken, Progress

SIGMA_RANGE = (0.0, 3.0)  # in units of the embedding matrix's standard deviation
DEFAULT_SIGMA = 1.0  # used (same units) when there is nothing to optimise against
SIGMA_PENALTY = 0.01  # objective cost per unit of sigma: prefer the gentler of two equals


@dataclass
class SigmaSearch:
    """The chosen strength and how it was found."""

    sigma: float
    objective: float | None
    trace: list[dict[str, Any]] = field(default_factory=list)
    known: int = 0  # train-split forget prompts the unguarded model answers correctly
    used: int = 0  # of which the search answers per evaluation
    evaluated: int = 0  # train-split forget prompts with a reference answer
    ignorant_level: float | None = None
    scale: float = 1.0
    note: str = ""


@dataclass
class TrainedRule:
    """Everything a ForgetRule row needs; ``classifier`` is the artifact's bytes."""

    name: str
    description: str
    examples: dict[str, Any]
    classifier: bytes
    threshold: float
    corruption: str
    corruption_params: dict[str, Any]
    sigma: float
    calibration: dict[str, Any]
    trace: list[dict[str, Any]]
    seconds: float = 0.0

    def to_row(self) -> dict[str, Any]:
        """The ForgetRule columns (``classifier_artifact`` is the stored bytes' hash)."""
        row = asdict(self)
        row.pop("seconds")
        row["classifier_bytes"] = row.pop("classifier")
        return row

    def guard_rule(self) -> GuardRule:
        return GuardRule(self.name, PromptClassifier.from_bytes(self.classifier), self.threshold,
                         self.corruption, dict(self.corruption_params), self.sigma)


def classifier_negatives(rule: RuleSpec) -> list[str]:
    """Training negatives: bundled everyday prompts and the rule's own retain prompts."""
    pool = [*load_general_prompts(), *rule.retain, *rule.general]
    return list(dict.fromkeys(e.prompt for e in pool if e.split == "train"))


def classifier_examples(rule: RuleSpec) -> tuple[list[str], list[str], Split | None]:
    """(positives, negatives, calibration split or None) of the rule's classifier: the train
    split augmented with the rule's names and short answers (engine/guard/augment.py), and
    its ``calibration`` prompts, written apart from the examples, where it has both kinds."""
    forget, retain = rule.split("forget", "train"), rule.split("retain", "train")
    positives, negatives = augment(
        [e.prompt for e in forget], classifier_negatives(rule), aliases=rule.aliases,
        terms=[*rule.terms, *short_answers(e.answer for e in forget)],
        neighbour_terms=[*rule.neighbour_terms, *short_answers(e.answer for e in retain)])
    calibration = ([e.prompt for e in rule.split("forget", "calibration")],
                   [e.prompt for e in [*rule.split("retain", "calibration"),
                                       *rule.split("general", "calibration")]])
    return positives, negatives, calibration if all(calibration) else None


def train_rule_job(lm: LoadedLM, rule: RuleSpec, *, encoder: Encoder | None = None,
                   corruption: str = DEFAULT_CORRUPTION,
                   corruption_params: dict[str, Any] | None = None, target_fpr: float = 0.01,
                   max_new_tokens: int = 24, max_evals: int = 9, max_known: int = 24,
                   seed: int = 0, cancel: CancelToken | None = None
                   ) -> Generator[Progress, None, TrainedRule]:
    """Job: train and calibrate the classifier, then optimise the corruption strength.

    The strength search answers at most ``max_known`` known forget prompts per evaluation.
    """
    started = time.perf_counter()
    rule.validate()
    params = _params(corruption, corruption_params, seed)
    yield Progress(0.0, f"training the prompt classifier of {rule.name!r}")
    if encoder is None:
        encoder = yield from in_background(load_sentence_encoder,
                                           loading("the prompt-classifier encoder"))
    positives, negatives, apart = classifier_examples(rule)
    written = ([e.prompt for e in rule.split("forget", "train")], classifier_negatives(rule))
    head, calibration = yield from scaled(train_classifier_job(
        encoder, positives, negatives, target_fpr, seed=seed, calibration=apart,
        written=written), 0.0, 0.1)
    yield Progress(0.1, "classifier calibrated", rounded(calibration.to_dict()))
    search = yield from choose_sigma(lm, rule, corruption, params, max_new_tokens, max_evals,
                                     max_known, cancel)
    info = {k: v for k, v in asdict(search).items() if k not in ("trace", "sigma")}
    result = TrainedRule(rule.name, rule.description, rule.to_dict(), head.to_bytes(),
                         calibration.threshold, corruption, params, search.sigma,
                         rounded({**calibration.to_dict(), "sigma_search": info}),
                         rounded(search.trace), time.perf_counter() - started)
    yield Progress(1.0, f"rule {rule.name!r} trained: sigma {search.sigma:.4f}")
    return result


def _params(name: str, params: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """The corruption's parameters with defaults filled in, validated early."""
    family = corruption_family(name)
    merged: dict[str, Any] = {"seed": seed} if family.random else {}
    if family.size_param:
        merged[family.size_param] = None
    merged.update(params or {})
    make_corruption(name, 0.0, merged)
    return merged


def choose_sigma(lm: LoadedLM, rule: RuleSpec, corruption: str, params: dict[str, Any],
                 max_new_tokens: int, max_evals: int, max_known: int = 24,
                 cancel: CancelToken | None = None) -> Generator[Progress, None, SigmaSearch]:
    """Job: the strength that brings forget-set knowledge to the ignorant reference's level."""
    scale = lm.embedding_std
    result = SigmaSearch(DEFAULT_SIGMA * scale, None, scale=scale)
    examples = keyed(rule.split("forget", "train"))
    if not corruption_family(corruption).uses_sigma:
        return SigmaSearch(0.0, None, note=f"{corruption} has no strength to optimise")
    if not examples:
        result.note = "no reference answers: default strength"
        return result
    answers = yield from scaled(answer_examples(lm, examples, max_new_tokens, cancel=cancel,
                                                label="forget set, unguarded"), 0.1, 0.3)
    known = [e for e, a in zip(examples, answers, strict=True) if a.correct]
    ignorant = yield from scaled(ignorant_level(lm, max_new_tokens, cancel), 0.3, 0.4)
    result.known, result.evaluated = len(known), len(examples)
    result.ignorant_level = ignorant.score or 0.0
    if not known:
        result.note = "the model knows none of the forget answers: default strength"
        return result
    result.used = min(len(known), max_known)
    knowledge = _knowledge_fn(lm, _spread(known, max_known), corruption, params,
                              max_new_tokens, cancel)
    best, result.trace = yield from _optimise(knowledge, result.ignorant_level, scale, max_evals)
    result.sigma, result.objective = best.x * scale, best.fx
    return result


def _spread(items: list, limit: int) -> list:
    """At most ``limit`` items, evenly spaced through the list."""
    if len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def _knowledge_fn(lm: LoadedLM, known: list, corruption: str, params: dict[str, Any],
                  max_new_tokens: int, cancel: CancelToken | None) -> Any:
    """sigma -> job returning the knowledge score on ``known`` with that strength."""
    def job(sigma: float) -> Generator[Progress, None, float]:
        return knowledge_after(lm, known, lambda s: make_corruption(corruption, s, params),
                               sigma, max_new_tokens, cancel)
    return job


def _optimise(knowledge: Any, target: float, scale: float, max_evals: int
              ) -> Generator[Progress, None, tuple[ZOResult, list[dict[str, Any]]]]:
    """Zeroth-order search on |knowledge(sigma) - ignorant| + penalty * sigma / scale."""
    search, trace, seen = zo_search(1.0, *SIGMA_RANGE, max_evals=max_evals, mu=0.5, lr=1.0), [], {}
    x = next(search)
    while True:
        if x not in seen:
            lo = 0.4 + 0.6 * len(trace) / max_evals
            seen[x] = yield from scaled(knowledge(x * scale), lo, lo + 0.6 / max_evals,
                                        f"strength {len(trace) + 1}/{max_evals}: ")
        objective = abs(seen[x] - target) + SIGMA_PENALTY * x
        trace.append({"eval": len(trace) + 1, "sigma": x * scale, "sigma_in_std": x,
                      "knowledge": seen[x], "objective": objective})
        try:
            x = search.send(objective)
        except StopIteration as stop:
            return stop.value, trace
