"""The LLM audit of one forget rule (docs/design.md section 5, `guard eval RULE`).

Every figure rests on held-out prompts only (split ``test``): the classifier trained, and the
strength search tuned sigma, on the ``train`` split, so scoring those would flatter the guard.
Figures: forget-set knowledge before / after the guard (on the held-out prompts the unguarded
model knows) against the ignorant reference; retain side effects (share of held-out answers
byte-identical to the unguarded model, which must be 100% for unflagged prompts); classifier
TPR / FPR on held-out forget, neighbour and general prompts; classifier latency and answer
times. The metrics carry ``basis`` "held-out"; evaluations stored before it scored training
prompts too and carry no ``basis``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from typing import Any

from engine.guard.classifier import Encoder, load_sentence_encoder
from engine.guard.guard import Guard, GuardRule, Verdict
from engine.guard.hook import corrupted_answer
from engine.guard.jobutil import percentile, rate, rounded, scaled
from engine.guard.knowledge import contains_key, ignorant_level, keyed
from engine.guard.lm import LoadedLM, encode_prompt, generate_text, timed_answer
from engine.guard.rules import Example, RuleSpec, load_general_prompts
from engine.jobs import CancelToken, Progress

Job = Generator[Progress, None, dict[str, Any]]
HELD_OUT = "test"
BASIS = "held-out"


def evaluate_rule(lm: LoadedLM, rule: RuleSpec, guard_rule: GuardRule, *,
                  encoder: Encoder | None = None, max_new_tokens: int = 24,
                  general_sample: int = 24, cancel: CancelToken | None = None) -> Job:
    """Job: every LLM audit figure for ``guard_rule`` on the held-out examples of ``rule``."""
    guard = Guard([guard_rule], encoder or load_sentence_encoder())
    general = [e for e in load_general_prompts() if e.split == HELD_OUT]
    yield Progress(0.0, "classifier on held-out prompts")
    classifier = classifier_figures(guard, rule, general)
    forget = yield from scaled(_paired_answers(lm, guard, keyed(rule.split("forget", HELD_OUT)),
                                               max_new_tokens, cancel), 0.05, 0.45,
                               "held-out forget set: ")
    retain_set = [*rule.split("retain", HELD_OUT), *rule.split("general", HELD_OUT),
                  *general[:general_sample]]
    retain = yield from scaled(_paired_answers(lm, guard, retain_set, max_new_tokens, cancel),
                               0.45, 0.9, "held-out retain set: ")
    ignorant = yield from scaled(ignorant_level(lm, max_new_tokens, cancel), 0.9, 1.0)
    result = {"rule": guard_rule.name, "model": lm.name, "max_new_tokens": max_new_tokens,
              "basis": BASIS, "classifier": classifier,
              "knowledge": _knowledge_figures(forget, ignorant.score, ignorant.evaluated),
              "side_effects": _side_effect_figures(retain),
              "latency": _latency_figures([*forget, *retain], classifier),
              "prompts": {"forget": forget, "retain": retain}}
    yield Progress(1.0, "evaluation done")
    return rounded(result)


def classifier_figures(guard: Guard, rule: RuleSpec, general: list[Example]) -> dict[str, Any]:
    """Held-out TPR (forget) and FPR (neighbour, general) with per-prompt latency.

    ``general`` is the held-out part of the bundled everyday prompts.
    """
    sets = {"forget": rule.split("forget", HELD_OUT),
            "neighbour": rule.split("retain", HELD_OUT),
            "general": [*rule.split("general", HELD_OUT), *general]}
    verdicts = {name: [(e.prompt, guard.classify(e.prompt)) for e in examples]
                for name, examples in sets.items()}
    flags = {name: [v.flagged for _, v in pairs] for name, pairs in verdicts.items()}
    ms = [v.seconds * 1e3 for pairs in verdicts.values() for _, v in pairs]
    return {"threshold": guard.rules[0].threshold,
            "tpr_forget": rate(flags["forget"]), "fpr_neighbour": rate(flags["neighbour"]),
            "fpr_general": rate(flags["general"]),
            "counts": {name: len(f) for name, f in flags.items()},
            "missed_forget": [p for p, v in verdicts["forget"] if not v.flagged],
            "flagged_neighbour": [p for p, v in verdicts["neighbour"] if v.flagged],
            "flagged_general": [p for p, v in verdicts["general"] if v.flagged],
            "latency_ms": {"p50": percentile(ms, 50), "p95": percentile(ms, 95),
                           "mean": sum(ms) / len(ms) if ms else None, "n": len(ms)}}


def _paired_answers(lm: LoadedLM, guard: Guard, examples: Sequence[Example], max_new_tokens: int,
                    cancel: CancelToken | None) -> Generator[Progress, None, list[dict]]:
    """Job: unguarded and guarded answer of every example, timed separately."""
    rows = []
    for i, example in enumerate(examples):
        if cancel is not None:
            cancel.check()
        rows.append(_paired_row(lm, guard, example, max_new_tokens))
        yield Progress((i + 1) / len(examples), f"{i + 1}/{len(examples)}")
    return rows


def _paired_row(lm: LoadedLM, guard: Guard, example: Example, max_new_tokens: int) -> dict:
    plain, plain_s = timed_answer(lm, example.prompt, max_new_tokens)
    encoded = encode_prompt(lm, example.prompt)
    verdict: Verdict = guard.classify(example.prompt)
    started = time.perf_counter()
    if verdict.flagged and verdict.rule is not None:
        guarded = corrupted_answer(lm, encoded, verdict.rule.corruption_fn(), max_new_tokens)
    else:
        guarded = generate_text(lm, encoded, max_new_tokens)
    guarded_s = time.perf_counter() - started
    knows = (lambda text: contains_key(text, example.keys)) if example.keys else (lambda _: None)
    return {"prompt": example.prompt, "group": example.group, "split": example.split,
            "flagged": verdict.flagged, "score": verdict.score, "unguarded": plain,
            "guarded": guarded, "identical": plain == guarded, "correct_before": knows(plain),
            "correct_after": knows(guarded), "classify_ms": verdict.seconds * 1e3,
            "unguarded_ms": plain_s * 1e3, "guarded_ms": guarded_s * 1e3}


def _knowledge_figures(rows: list[dict], ignorant: float | None,
                       ignorant_prompts: int) -> dict[str, Any]:
    """``before`` rests on ``evaluated`` prompts, ``after`` on ``known``, ``ignorant`` on
    ``ignorant_prompts``."""
    known = [r for r in rows if r["correct_before"]]
    after = rate([bool(r["correct_after"]) for r in known])
    return {"before": rate([bool(r["correct_before"]) for r in rows]),
            "known": len(known), "evaluated": len(rows),
            "after": after, "after_all": rate([bool(r["correct_after"]) for r in rows]),
            "ignorant": ignorant, "ignorant_prompts": ignorant_prompts,
            "gap_to_ignorant": None if after is None or ignorant is None else after - ignorant,
            "flagged_known": sum(r["flagged"] for r in known)}


def _side_effect_figures(rows: list[dict]) -> dict[str, Any]:
    unflagged = [r for r in rows if not r["flagged"]]
    keyed_rows = [r for r in rows if r["correct_before"] is not None]
    return {"identical": rate([r["identical"] for r in rows]),
            "identical_unflagged": rate([r["identical"] for r in unflagged]),
            "evaluated": len(rows), "flagged": len(rows) - len(unflagged),
            "unflagged": len(unflagged),
            "flagged_prompts": [r["prompt"] for r in rows if r["flagged"]],
            "keyed": len(keyed_rows),
            "neighbour_knowledge_before": rate([r["correct_before"] for r in keyed_rows]),
            "neighbour_knowledge_after": rate([r["correct_after"] for r in keyed_rows])}


def _latency_figures(rows: list[dict], classifier: dict[str, Any]) -> dict[str, Any]:
    if not rows:
        return {"classifier_ms": classifier["latency_ms"], "n": 0}
    plain = [r["unguarded_ms"] for r in rows]
    guarded = [r["guarded_ms"] + r["classify_ms"] for r in rows]
    mean_plain, mean_guarded = sum(plain) / len(plain), sum(guarded) / len(guarded)
    mean_classify = sum(r["classify_ms"] for r in rows) / len(rows)
    return {"classifier_ms": classifier["latency_ms"],
            "answer_ms_unguarded": {"mean": mean_plain, "p50": percentile(plain, 50)},
            "answer_ms_guarded": {"mean": mean_guarded, "p50": percentile(guarded, 50)},
            "overhead_share": mean_classify / mean_plain,
            "measured_overhead_share": mean_guarded / mean_plain - 1.0, "n": len(rows)}
