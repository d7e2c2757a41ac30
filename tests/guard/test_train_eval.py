"""train_rule_job and evaluate_rule end to end on the tiny model with the hashing encoder."""

from __future__ import annotations

import pytest

from engine.guard.evaluate import evaluate_rule
from engine.guard.lm import answer
from engine.guard.rules import Example, RuleSpec
from engine.guard.train import TrainedRule, train_rule_job
from engine.jobs import Cancelled, CancelToken, Progress, run_job

TOKENS = 4
TOPIC = ["Who founded Hogwarts?", "Where is Hogwarts?", "Hogwarts motto?", "Hogwarts houses?",
         "Hogwarts teachers?", "Hogwarts ghosts?", "Is Hogwarts in Scotland?", "Hogwarts sports?"]
RETAIN = ["Who wrote Narnia?", "Who wrote The Hobbit?", "What is Eton?", "Who was Houdini?"]


@pytest.fixture(scope="module")
def rule(lm) -> RuleSpec:
    """A rule whose reference answers are what the tiny model says, so that it 'knows' them."""
    forget = [Example(p, answer(lm, p, TOKENS), (answer(lm, p, TOKENS),),
                      "test" if i >= 6 else "train") for i, p in enumerate(TOPIC)]
    retain = [Example(p, split="test" if i % 2 else "train", group="fantasy")
              for i, p in enumerate(RETAIN)]
    general = [Example("What is 2+2?", split="test")]
    return RuleSpec("hogwarts", "test rule", forget, retain, general)


@pytest.fixture(scope="module")
def trained(lm, rule) -> TrainedRule:
    from .conftest import HashEncoder

    records: list[Progress] = []
    result = run_job(train_rule_job(lm, rule, encoder=HashEncoder(), max_new_tokens=TOKENS,
                                    max_evals=3), records.append)
    assert records and records[-1].fraction == 1.0
    assert all(r.fraction is None or 0.0 <= r.fraction <= 1.0 for r in records)
    return result


def test_trained_rule_has_every_registry_field(trained: TrainedRule) -> None:
    row = trained.to_row()
    assert {"name", "description", "examples", "classifier_bytes", "threshold", "corruption",
            "corruption_params", "sigma", "calibration", "trace"} <= set(row)
    assert row["corruption"] == "gaussian_first_n" and row["corruption_params"]["seed"] == 0
    assert isinstance(row["classifier_bytes"], bytes)
    assert {"threshold", "tpr", "fpr", "n_positive", "n_negative"} <= set(row["calibration"])


def test_sigma_search_is_bounded_and_traced(trained: TrainedRule) -> None:
    search = trained.calibration["sigma_search"]
    assert search["known"] == 6 and search["ignorant_level"] is not None
    assert 1 <= len(trained.trace) <= 3
    assert all({"sigma", "knowledge", "objective"} <= set(t) for t in trained.trace)
    best = min(trained.trace, key=lambda t: (t["objective"], t["sigma"]))
    assert trained.sigma == pytest.approx(best["sigma"], abs=1e-6)
    assert 0.0 <= trained.sigma <= 3.0 * search["scale"] + 1e-9


def test_evaluation_reports_every_audit_figure(lm, rule, trained) -> None:
    from .conftest import HashEncoder

    figures = run_job(evaluate_rule(lm, rule, trained.guard_rule(), encoder=HashEncoder(),
                                    max_new_tokens=TOKENS, general_sample=3))
    assert figures["side_effects"]["identical_unflagged"] == 1.0
    assert figures["knowledge"]["known"] == len(rule.split("forget", "test"))
    assert figures["knowledge"]["before"] == 1.0
    assert {"tpr_forget", "fpr_neighbour", "fpr_general", "latency_ms"} <= set(
        figures["classifier"])
    assert figures["latency"]["overhead_share"] >= 0.0
    flagged_known = [r for r in figures["prompts"]["forget"] if r["flagged"]]
    assert figures["knowledge"]["flagged_known"] == len(flagged_known)


def test_evaluation_scores_held_out_prompts_only(lm, rule, trained) -> None:
    """Knowledge and side effects rest on the test split only: the classifier trained and
    the strength search tuned sigma on the train split; each figure says on how many."""
    from .conftest import HashEncoder

    figures = run_job(evaluate_rule(lm, rule, trained.guard_rule(), encoder=HashEncoder(),
                                    max_new_tokens=TOKENS, general_sample=3))
    rows = figures["prompts"]
    trained_on = {e.prompt for part in ("forget", "retain", "general")
                  for e in rule.split(part, "train")}
    assert figures["basis"] == "held-out"
    assert {r["split"] for r in [*rows["forget"], *rows["retain"]]} == {"test"}
    assert trained_on.isdisjoint(r["prompt"] for r in [*rows["forget"], *rows["retain"]])
    knowledge, side = figures["knowledge"], figures["side_effects"]
    assert knowledge["evaluated"] == len(rule.split("forget", "test")) == 2
    assert knowledge["ignorant_prompts"] > 0
    held_out_retain = len(rule.split("retain", "test")) + len(rule.split("general", "test")) + 3
    assert side["evaluated"] == held_out_retain == side["unflagged"] + side["flagged"]
    assert figures["classifier"]["counts"]["forget"] == 2


def test_training_honours_cancel(lm, rule) -> None:
    from .conftest import HashEncoder

    token = CancelToken()
    token.set()
    with pytest.raises(Cancelled):
        run_job(train_rule_job(lm, rule, encoder=HashEncoder(), max_new_tokens=TOKENS,
                               cancel=token))


def test_strengthless_corruptions_skip_the_search(lm, rule) -> None:
    from .conftest import HashEncoder

    result = run_job(train_rule_job(lm, rule, encoder=HashEncoder(), corruption="reverse",
                                    max_new_tokens=TOKENS))
    assert result.sigma == 0.0 and result.trace == []
