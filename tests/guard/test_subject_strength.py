"""The corruption of a data subject's rule: the tokens naming them, a strength calibrated
against never-trained people, and rules built before either (docs/design.md section 14)."""

from __future__ import annotations

import pytest
import torch

from engine.guard.lm import encode_prompt
from engine.guard.scope import ScopedCorruption, prompt_mask, subject_terms

TERMS = subject_terms("Xander Ashcombe", ["Mx. Ashcombe", "the beekeeper born in Port Halvard"])


def _named(lm, prompt: str) -> str:
    """The text of the prompt's tokens the name scope picks (byte tokenizer: exact)."""
    encoded = encode_prompt(lm, prompt)
    mask = prompt_mask(lm, encoded, prompt, ScopedCorruption(lambda e: e, tuple(TERMS)))
    return lm.tokenizer.decode(encoded.input_ids[0][mask].tolist())


def test_terms_are_the_name_its_parts_and_aliases_longest_first() -> None:
    assert TERMS[0] == "the beekeeper born in Port Halvard"
    assert {"Xander Ashcombe", "Xander", "Ashcombe", "Mx. Ashcombe"} <= set(TERMS)


def test_only_the_tokens_naming_the_subject_are_corrupted(lm) -> None:
    assert _named(lm, "Where was Xander Ashcombe born?") == "Xander Ashcombe"
    assert _named(lm, "Where was MX. ASHCOMBE born?") == "MX. ASHCOMBE"
    assert _named(lm, "Who is Xanderson?") == "Who is Xanderson?"  # no whole word: all text
    assert _named(lm, "Where was the beekeeper born in Port Halvard educated?") == \
        "the beekeeper born in Port Halvard"


def test_the_hook_and_the_scores_corrupt_the_same_name_tokens(lm) -> None:
    from engine.guard.hook import corrupted_answer
    from engine.guard.scoring import answer_scores

    seen = []

    def corrupt(emb: torch.Tensor) -> torch.Tensor:
        seen.append(emb.shape[-2])
        return emb * 0
    scoped = ScopedCorruption(corrupt, tuple(TERMS))
    corrupted_answer(lm, "Where was Ashcombe born?", scoped, 2)
    encoded = encode_prompt(lm, "Where was Ashcombe born?")
    corrupted_answer(lm, encoded, scoped, 2)  # text decoded from the tokens
    answer_scores(lm, [("Where was Ashcombe born?", "Port Halvard.")], lambda q: scoped)
    assert seen == [len("Ashcombe")] * 3


def test_bisection_reaches_the_target_loss_on_a_tiny_model(lm) -> None:
    from engine.guard.corruption import make_corruption
    from engine.guard.subject_strength import bisect_strength, median_loss

    pairs = [("Where was Xander Ashcombe born?", "Xander Ashcombe was born in Port Halvard."),
             ("What does Ashcombe do?", "Xander Ashcombe is a beekeeper.")]

    def loss_at(sigma: float) -> float:
        fn = make_corruption("gaussian_first_n", sigma * lm.embedding_std, {"n": None})
        return median_loss(lm, pairs, ScopedCorruption(fn, tuple(TERMS)))
    target = (loss_at(0.0) + loss_at(4.0)) / 2
    sigma, reached, trace = bisect_strength(loss_at, target)
    assert 0 < sigma < 4 and abs(reached - target) < 0.05 * abs(loss_at(4.0) - loss_at(0.0))
    assert len(trace) == 10
    assert bisect_strength(loss_at, loss_at(0.0) - 1)[0] == 0.0  # already a stranger
    assert bisect_strength(loss_at, loss_at(4.0) + 1)[0] == 4.0  # unreachable: the bound


def test_calibration_records_its_figures_and_never_uses_trained_people(lm) -> None:
    from engine.guard.people import generate, people
    from engine.guard.subject_strength import calibrate_strength, calibration_strangers

    records = generate(4, 2)
    mine = [r for r in records if r.person == people(records)[0]]
    assert not set(people(calibration_strangers(people(records), 2))) & set(people(records))
    found = calibrate_strength(lm, mine, people(records), "gaussian_first_n", {"n": None},
                               subject_terms(mine[0].person), 1, lm.embedding_std)
    assert found.n_person == 4 and found.n_strangers == 8 * 2 * 2  # people x facts x phrasings
    assert found.reached_loss == pytest.approx(
        min(found.trace, key=lambda t: abs(t["loss"] - found.target_loss))["loss"])


@pytest.mark.parametrize("params", [{"seed": 0, "n": None},  # a rule built before issue 18
                                    {"seed": 0, "n": None, "scope_terms": TERMS}])
def test_stored_rules_old_and_new_load_and_guard(lm, encoder, params) -> None:
    from engine.guard.classifier import PromptClassifier
    from engine.guard.guard import Guard, GuardRule, guarded_answer

    prompt = "Where was Xander Ashcombe born?"
    head = PromptClassifier(encoder(["ashcombe"])[0] * 20.0, -5.0, encoder.name)
    row = {"name": "subject-x", "threshold": 0.5, "corruption": "gaussian_first_n",
           "corruption_params": params, "sigma": 0.1}
    rule = GuardRule.from_row(row, head.to_bytes())
    encoded = encode_prompt(lm, prompt)
    mask = prompt_mask(lm, encoded, prompt, rule.corruption_fn())
    named = "scope_terms" in params
    assert int(mask.sum()) == (len("Xander Ashcombe") if named else len(prompt))
    reply = guarded_answer(lm, Guard([rule], encoder), prompt, 4, unguarded=True)
    assert reply.flagged and reply.rule == "subject-x"


def test_a_name_scoped_calibration_stores_the_names_and_views_count_them(lm) -> None:
    from engine.guard.people import generate, people
    from engine.guard.scope import NAME_TOKENS, SCOPE_KEY
    from engine.guard.subject_rule import calibrated_corruption
    from storage.rules import public_params

    records = generate(4, 2)
    person = people(records)[0]
    params, cal = calibrated_corruption(records, person, lm, lm.embedding_std, scoped=True)
    assert person in params[SCOPE_KEY] and cal["token_scope"] == NAME_TOKENS
    assert public_params(params)[SCOPE_KEY] == len(params[SCOPE_KEY])
    assert cal["strength"]["outcome"] in ("met", "unguarded", "bound")
