"""The prompt classifier: training, calibration, serialisation and bad inputs."""

from __future__ import annotations

import pytest
import torch

from engine.guard.classifier import PromptClassifier, calibrate_threshold, train_classifier
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
    head, calibration = train_classifier(encoder, forget, negatives, target_fpr=0.02, folds=3)
    assert calibration.fpr <= 0.02 and calibration.n_negative == len(negatives)
    assert 0.0 <= calibration.tpr <= 1.0 and calibration.folds == 3
    assert head.weight.shape == (64,)


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
