"""TOFU / MUSE figures on the tiny model: the formulas, and guarded scores that match the
guard's own prompt pass (docs/design.md section 14)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.guard import tofu
from engine.guard.corruption import make_corruption
from engine.guard.hook import corrupted_prompt_pass
from engine.guard.lm import encode_prompt
from engine.guard.people import generate
from engine.guard.scoring import answer_scores, batch_answers

RECORDS = generate(4, 2)


def test_formulas():
    assert tofu.rouge_l_recall("born in the town of Kelmscar", "born in Kelmscar") == 1.0
    assert tofu.rouge_l_recall("nothing at all", "born in Kelmscar") == 0.0
    assert tofu.rouge_l_recall("in born", "born in") == 0.5
    assert tofu.repetition("The answer is: " * 6) > 0.6
    assert tofu.repetition("Ann was born in Kelmscar on a Tuesday.") == 0.0
    assert tofu.harmonic_mean([0.5, 0.5]) == 0.5 and tofu.harmonic_mean([0.5, 0.0]) == 0.0
    assert tofu.privleak(0.55, 0.5) == pytest.approx(0.1)
    assert tofu.forget_quality([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]) == 1.0
    assert tofu.forget_quality([0.01] * 30, [0.9] * 30) < 1e-6
    assert tofu.truth_stat([0.25, 1.5]) == pytest.approx(0.375)
    assert sum(tofu.histogram([0.1, 0.5, 3.0], bins=4)["counts"]) == 3


def test_truth_ratios_and_membership(lm):
    ratios = tofu.truth_ratios(lm, RECORDS)
    assert len(ratios) == len(RECORDS) and all(math.isfinite(r) and r > 0 for r in ratios)
    figures = tofu.membership(lm, RECORDS[:4], RECORDS[4:])
    assert set(figures["auc"]) == set(tofu.ATTACKS)
    assert all(0.0 <= v <= 1.0 for v in figures["auc"].values())


def test_guarded_scores_match_the_guard_prompt_pass(lm):
    record = RECORDS[0]
    corruption = make_corruption("gaussian_first_n", 0.5, {"n": None})
    plain, = answer_scores(lm, [(record.question, record.answer)])
    guarded, = answer_scores(lm, [(record.question, record.answer)],
                             lambda q: corruption if q == record.question else None)
    assert not torch.allclose(plain.logp, guarded.logp)
    encoded = encode_prompt(lm, record.question)
    with torch.inference_mode(), corrupted_prompt_pass(lm, corruption, encoded.content_mask):
        logits = lm.model(input_ids=encoded.input_ids).logits[0, -1].float()
    first = int(lm.tokenizer(record.answer, add_special_tokens=False)["input_ids"][0])
    assert guarded.logp[0] == pytest.approx(float(logits.log_softmax(-1)[first]), abs=1e-4)
    other, = answer_scores(lm, [(RECORDS[1].question, RECORDS[1].answer)],
                           lambda q: corruption if q == record.question else None)
    assert torch.allclose(other.logp, answer_scores(
        lm, [(RECORDS[1].question, RECORDS[1].answer)])[0].logp)


def test_batch_answers_match_single_answers(lm):
    from engine.guard.lm import answer

    questions = [r.question for r in RECORDS[:3]]
    assert batch_answers(lm, questions, 4) == [answer(lm, q, 4) for q in questions]


def test_fact_stated_counts_answers_that_give_the_value_away():
    from engine.guard.people import FactRecord
    from engine.guard.tofu import fact_stated

    def record(value: str) -> FactRecord:
        return FactRecord("Ida Vale", "birthplace", "Where was Ida Vale born?",
                          f"Ida Vale was born in {value}.", "", [], value=value)
    records = [record("Port Halvard"), record("Veldhaven"), record("")]
    answers = ["She was born in port halvard.", "Ida Vale was born in Oakhollow.", "x"]
    assert fact_stated(records, answers) == 0.5  # the record without a value is not counted
    assert fact_stated(records[2:], answers[2:]) is None
