"""The value bias (engine/guard/value_bias.py): which values it lowers, that it acts only
on the tokens that would continue them, that a generation and a score see the same bias,
and that its calibration meets the level of values nobody in the corpus has."""

from __future__ import annotations

from dataclasses import replace

import torch

from engine.guard.hook import corrupted_answer
from engine.guard.lm import encode_prompt, generate_text
from engine.guard.people import generate, people
from engine.guard.pseudonym import pseudonymise, restore
from engine.guard.recall import RecallAblation
from engine.guard.scoring import answer_scores
from engine.guard.value_bias import (
    ValueBias,
    biased_logits,
    calibrate,
    continuing,
    differing,
    record_value,
    unique_values,
    unseen_answers,
    value_penalty,
)
from tests.guard.conftest import tiny_lm

PAIRS = (("Xander", "Tovrel"), ("Ashcombe", "Brindsk"))


def test_values_are_read_from_the_records_and_kept_when_only_the_person_has_them():
    records = generate(6, 4)
    person = people(records)[0]
    assert differing("The town is Port Halvard.", "The town is Casta Rosa.") == \
        ("Port Halvard", "Casta Rosa")
    mine = [r for r in records if r.person == person]
    assert record_value(replace(mine[0], value="")) == \
        differing(mine[0].paraphrased_answer, mine[0].perturbed_answers[0])[0]
    others = {record_value(r).lower() for r in records if r.person != person}
    unique = unique_values(records, person)
    assert unique and not {v.lower() for v in unique} & others
    assert set(unique) <= {record_value(r) for r in mine}
    known = {record_value(r).lower() for r in records}
    assert all(v.lower() not in known and v in wrong and r.person == person
               for r, wrong, v in unseen_answers(records, person))


def test_only_the_tokens_that_would_continue_a_value_are_lowered():
    sequences = [(5, 6, 7)]
    assert continuing([], sequences) == {5}
    assert continuing([1, 5], sequences) == {5, 6}
    assert continuing([5, 6], sequences) == {5, 7}
    logits = torch.zeros(4, 10)
    out = biased_logits(logits, [5, 6, 7, 1], sequences, 2.0)
    assert out[0, 5] == -2 and out[1, 6] == -2 and out[2, 7] == -2 and out[3, 5] == -2
    assert int((out != 0).sum()) == 6  # the first token everywhere, then the continuations
    assert torch.equal(biased_logits(logits, [5], sequences, 0.0), logits)


def test_a_biased_generation_is_the_argmax_of_the_biased_score():
    question = "Where was Tovrel Brindsk born?"
    for seed in range(40):  # a tiny model whose answer starts with two plain characters
        lm = tiny_lm(seed=seed)
        encoded = encode_prompt(lm, question)
        unbiased = generate_text(lm, encoded, 12)
        if unbiased[:2].isascii() and unbiased[:2].isalnum():
            break
    bias = ValueBias((unbiased[:2],), 50.0)  # the answer's own beginning, made unlikely
    penalty = value_penalty(bias, lm.tokenizer, encoded.input_ids.shape[1])
    text = generate_text(lm, encoded, 12, None, penalty)
    assert not text.startswith(unbiased[:2])
    start = encoded.input_ids.shape[1]
    with torch.inference_mode():
        out = lm.model.generate(input_ids=encoded.input_ids, max_new_tokens=12, do_sample=False,
                                logits_processor=penalty,
                                pad_token_id=lm.tokenizer.pad_token_id)[0]
        logits = lm.model(input_ids=out[None]).logits[0, start - 1:-1]
    answer = out[start:].tolist()
    biased = biased_logits(logits, answer, bias.sequences(lm.tokenizer), bias.delta)
    assert biased.argmax(-1).tolist() == answer


def test_a_guarded_score_under_the_pseudonym_carries_the_bias():
    lm = tiny_lm(seed=1)
    question, answer = "Where was Xander Ashcombe born?", "Xander Ashcombe was born in Port."
    plain = RecallAblation(("Xander Ashcombe",), 1, 2, PAIRS)
    biased = RecallAblation(("Xander Ashcombe",), 1, 2, PAIRS, ("Port",), 3.0)
    without = answer_scores(lm, [(question, answer)], lambda q: plain)[0]
    within = answer_scores(lm, [(question, answer)], lambda q: biased)[0]
    assert within.mean_logp < without.mean_logp
    under = (pseudonymise(question, PAIRS), pseudonymise(answer, PAIRS))
    encoded = encode_prompt(lm, under[0])
    penalty = value_penalty(ValueBias(("Port",), 3.0), lm.tokenizer, encoded.input_ids.shape[1])
    assert corrupted_answer(lm, question, biased, 6) == \
        restore(generate_text(lm, encoded, 6, None, penalty), PAIRS)
    assert torch.allclose(answer_scores(lm, [under])[0].logp, without.logp, atol=1e-5)


def test_calibration_brings_the_values_to_the_unseen_level():
    lm = tiny_lm(seed=2)
    records = generate(5, 6)
    person = people(records)[0]
    bias, found = calibrate(lm, records, person, PAIRS)
    assert found["unique_values"] == len(bias.values) > 0 and found["unseen_answers"] > 0
    assert bias.delta >= 0
    if found["unbiased_logp"] > found["reference_logp"]:
        assert abs(found["biased_logp"] - found["reference_logp"]) < 0.01
    else:
        assert bias.delta == 0
