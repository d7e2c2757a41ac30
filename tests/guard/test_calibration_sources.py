"""A rule's calibration says what the classifier was fit and calibrated on, written
examples and augmented variants apart, and whether its calibration split was drawn from
the same examples (docs/design.md section 6.2)."""

from __future__ import annotations

from engine.guard import calibration_sources as sources
from engine.guard.classifier import train_classifier_job
from engine.jobs import run_job
from reports import guard_text

FORGET = [f"Tell me about the wizard number {i}." for i in range(8)]
VARIANTS = [f"Quick question: tell me about the wizard number {i}." for i in range(4)]
OTHER = [f"How do I bake bread number {i}?" for i in range(12)]


def test_a_split_drawn_from_augmented_examples_counts_them_and_says_it_is_weaker(
        encoder) -> None:  # noqa: ANN001
    _, cal = run_job(train_classifier_job(encoder, FORGET + VARIANTS, OTHER,
                                          written=(FORGET, OTHER)))
    split = cal.sources
    assert split["calibration"] == sources.SAME_EXAMPLES == guard_text.SAME_EXAMPLES
    for part, total in (("fit_positive", cal.n_fit_positive), ("positive", cal.n_positive),
                        ("fit_negative", cal.n_fit_negative), ("negative", cal.n_negative)):
        assert split[part]["written"] + split[part]["augmented"] == total
    assert split["fit_positive"]["written"] + split["positive"]["written"] == len(FORGET)
    assert split["fit_positive"]["augmented"] + split["positive"]["augmented"] == len(VARIANTS)
    text = guard_text.calibration_sentence(cal.to_dict())
    written, augmented = split["fit_positive"]["written"], split["fit_positive"]["augmented"]
    assert (f"It trained on {cal.n_fit_positive} forget prompts ({written} written, "
            f"{augmented} augmented variants)") in text
    assert "weaker calibration than one on prompts written apart" in text


def test_a_calibration_written_apart_is_said_to_be_written(encoder) -> None:  # noqa: ANN001
    apart = (["Who was the wizard number 9?"], ["How long do I knead bread?"])
    _, cal = run_job(train_classifier_job(encoder, FORGET + VARIANTS, OTHER,
                                          calibration=apart, written=(FORGET, OTHER)))
    assert cal.sources["calibration"] == sources.WRITTEN_APART
    assert cal.sources["fit_positive"] == {"written": 8, "augmented": 4}
    text = guard_text.calibration_sentence(cal.to_dict())
    assert "on 1 written forget prompt and FPR" in text and "weaker" not in text


def test_a_rule_without_the_breakdown_says_its_counts_mix_both() -> None:
    old = {"target_fpr": 0.01, "tpr": 0.9, "fpr": 0.01, "n_positive": 10, "n_negative": 40,
           "n_fit_positive": 30, "n_fit_negative": 120}
    text = guard_text.calibration_sentence(old)
    assert "It trained on 30 forget prompts (written and augmented, not told apart)" in text
