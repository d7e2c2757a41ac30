"""The prompt classifier: training, calibration, serialisation and bad inputs."""

from __future__ import annotations

import pytest
import torch

from engine.guard.classifier import (
    PromptClassifier,
    calibrate_threshold,
    calibration_split,
    fit_head,
    train_classifier,
)
from engine.guard.rules import load_demo_rule, load_general_prompts
from storage.errors import UnpromptError


def test_threshold_keeps_the_false_positive_rate_at_or_below_target() -> None:
    scores = torch.linspace(0.0, 1.0, 201)
    threshold = calibrate_threshold(scores, 0.01)
    assert float((scores > threshold).float().mean()) <= 0.01
    assert float((scores > threshold - 0.006).float().mean()) > 0.01
    assert calibrate_threshold(scores, 0.0) == 1.0


def test_demo_rule_trains_with_the_hash_encoder(encoder) -> None:
    rule = load_demo_rule()
    negatives = [e.prompt for e in [*load_general_prompts(), *rule.retain] if e.split == "train"]
    forget = [e.prompt for e in rule.split("forget", "train")]
    head, calibration = train_classifier(encoder, forget, negatives, target_fpr=0.02)
    assert calibration.fpr <= 0.02
    assert calibration.n_negative + calibration.n_fit_negative == len(negatives)
    assert 0.0 <= calibration.tpr <= 1.0
    assert calibration.n_fit_positive + calibration.n_positive == len(forget)
    assert head.weight.shape == (64,)


def test_deployed_head_is_calibrated_on_prompts_it_never_trained_on(encoder) -> None:
    """The threshold and the stored rates come from the head that is deployed, scored on
    a calibration split it did not train on (not other heads' out-of-fold scores)."""
    rule = load_demo_rule()
    negatives = [e.prompt for e in load_general_prompts() if e.split == "train"]
    forget = [e.prompt for e in rule.split("forget", "train")]
    head, calibration = train_classifier(encoder, forget, negatives, target_fpr=0.02, seed=3)
    (fit_p, cal_p), (fit_n, cal_n) = calibration_split(len(forget), len(negatives), seed=3)
    assert set(fit_p.tolist()).isdisjoint(cal_p.tolist()) and len(cal_n) >= 0.2 * len(negatives)
    pos, neg = encoder(forget), encoder(negatives)
    unseen = fit_head(pos[fit_p], neg[fit_n], encoder_name=encoder.name)
    assert torch.equal(head.weight, unseen.weight)  # deployed = fit without the calibration rows
    assert not torch.allclose(head.weight, fit_head(pos, neg).weight)
    cal_scores = head.scores(neg[cal_n])
    assert calibration.threshold == calibrate_threshold(cal_scores, 0.02)
    assert calibration.fpr == pytest.approx(float((cal_scores > calibration.threshold).float()
                                                  .mean()))
    assert calibration.tpr == pytest.approx(float((head.scores(pos[cal_p])
                                                   > calibration.threshold).float().mean()))
    assert (calibration.n_positive, calibration.n_negative) == (len(cal_p), len(cal_n))
    assert calibration.method == "held-out calibration split"


def test_a_score_equal_to_the_threshold_is_not_flagged(encoder) -> None:
    """The guard flags strictly above the threshold, as the certificate says."""
    from engine.guard.guard import Guard, GuardRule

    head = PromptClassifier(torch.zeros(64), 0.0, encoder.name)  # scores 0.5 for every prompt
    at = Guard([GuardRule("r", head, 0.5, "reverse", {}, 0.0)], encoder)
    below = Guard([GuardRule("r", head, 0.4999, "reverse", {}, 0.0)], encoder)
    assert not at.classify("anything").flagged and below.classify("anything").flagged


def test_head_round_trips_through_bytes(encoder) -> None:
    head = PromptClassifier(torch.randn(64), 0.25, encoder.name)
    data = head.to_bytes()
    assert isinstance(data, bytes) and len(data) < 2048
    back = PromptClassifier.from_bytes(data)
    assert torch.equal(back.weight, head.weight) and back.bias == 0.25
    assert back.encoder_name == encoder.name
    with pytest.raises(UnpromptError, match="unreadable"):
        PromptClassifier.from_bytes(b"garbage")
    with pytest.raises(UnpromptError, match="expects 64-dimensional"):
        back.scores(torch.zeros(1, 384))


@pytest.mark.parametrize(("forget", "message"), [
    ([], "no forget examples"),
    (["one", "two", "three", "four"], "only 4 forget examples to train on"),
    (["a", "b", " ", "d", "e"], "empty example"),
])
def test_bad_rules_are_refused(encoder, forget: list[str], message: str) -> None:
    with pytest.raises(UnpromptError, match=message):
        train_classifier(encoder, forget, ["negative one", "negative two"])


def test_one_negative_prompt_is_refused(encoder) -> None:
    """A held-out calibration split needs a negative the head never trains on."""
    with pytest.raises(UnpromptError, match="at least two prompts not about the topic"):
        train_classifier(encoder, ["a b", "c d", "e f", "g h", "i j"], ["only one"])
