"""Sentences of a forget-rule certificate that say what a figure rests on: how the
threshold was calibrated and on how many prompts, and how many examples were held out.

Rules trained before held-out calibration stored out-of-fold rates of other heads; those are
labelled as such, never as the deployed classifier's held-out rates.
"""

from __future__ import annotations

from typing import Any

SAME_EXAMPLES = "drawn from the examples and their augmented variants"  # as the engine records


def pct(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value * 100:.1f}%"


def examples_sentence(examples: dict[str, int]) -> str:
    """'8 forget (2 held out), 3 retain, 0 general' (older manifests: no held-out counts)."""
    def part(name: str) -> str:
        held = examples.get(f"{name}_held_out")
        return f"{examples[name]} {name}" + (f" ({held} held out)" if held else "")
    parts = [part(k) for k in ("forget", "retain", "general") if k in examples]
    note = ("; the held-out examples never trained the classifier and are the audit's prompts"
            if any(examples.get(f"{k}_held_out") for k in ("forget", "retain", "general"))
            else "")
    return ", ".join(parts) + note


def calibration_sentence(cal: dict[str, Any]) -> str:
    """How the threshold was calibrated and on how many prompts: a held-out calibration split
    the deployed classifier never trained on, or (rules trained before it) out-of-fold scores
    of other heads, labelled as such. Counts say which prompts were written and which were
    augmented variants, and a split drawn from the same examples says it is weaker."""
    target = f"Calibrated for FPR at most {pct(cal.get('target_fpr'))}"
    sources = cal.get("sources") or {}
    positive = prompt_count(cal.get("n_positive"), sources.get("positive"), "forget")
    negative = prompt_count(cal.get("n_negative"), sources.get("negative"), "other")
    rates = f"TPR {pct(cal.get('tpr'))} on {positive} and FPR {pct(cal.get('fpr'))} on {negative}"
    if cal.get("n_fit_positive") is not None:
        return (f"{target} on a calibration split the deployed classifier never trained on: "
                f"{rates}. It trained on {fit_prompts(cal)}.{weaker_sentence(cal)}")
    if cal.get("tpr") is None:
        return f"{target}."
    return (f"{target} on out-of-fold scores of other heads (a rule trained before held-out "
            f"calibration; the deployed classifier then trained on every prompt): {rates}.")


def prompt_count(count: Any, split: dict[str, int] | None, noun: str) -> str:
    """'40 forget prompts (12 written, 28 augmented variants)'; without a breakdown (rules
    trained before it, people's rules) the count says that it mixes both."""
    if not _number(count):
        return f"{noun} prompts"
    prompts = "prompt" if int(count) == 1 else "prompts"
    if not split:
        return f"{int(count)} {noun} {prompts} (written and augmented, not told apart)"
    if not split.get("augmented"):
        return f"{int(count)} written {noun} {prompts}"
    return (f"{int(count)} {noun} {prompts} ({split['written']} written, "
            f"{split['augmented']} augmented variants)")


def fit_prompts(cal: dict[str, Any]) -> str:
    """What the deployed classifier was fit on, written and augmented told apart."""
    sources = cal.get("sources") or {}
    positive = prompt_count(cal.get("n_fit_positive"), sources.get("fit_positive"), "forget")
    negative = prompt_count(cal.get("n_fit_negative"), sources.get("fit_negative"), "other")
    return f"{positive} and {negative}"


def weaker_sentence(cal: dict[str, Any]) -> str:
    """Said when the calibration split was drawn from the same written examples as the fit
    split and their augmented variants: a variant's written example (or its other variants)
    trained the classifier, so the split flatters its rates."""
    if (cal.get("sources") or {}).get("calibration") != SAME_EXAMPLES:
        return ""
    return (" The calibration split was drawn from the same written examples and their "
            "augmented variants (the rule has no calibration prompts written apart), so the "
            "classifier trained on relatives of its prompts: a weaker calibration than one "
            "on prompts written apart, and its rates are likely flattered.")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def n_before(value: Any) -> str:
    """'35 ' before a noun, or nothing when the count is unknown."""
    return f"{int(value)} " if _number(value) else ""


def on_prompts(value: Any) -> str:
    return f" on {int(value)} prompts" if _number(value) else ""


def count_cell(value: Any) -> str:
    return str(int(value)) if _number(value) else ""


def zeroed_layers(first: Any, last: Any) -> str:
    """What a recall ablation does to layers ``[first, last)`` (engine/guard/recall.py)."""
    upto = last - 1 if isinstance(last, int) else "?"
    return f"the outputs of the MLP blocks of layers {first} to {upto} are zeroed"


def person_corruption(family: str, first: Any, last: Any, value_bias: Any = None) -> str:
    """A person's corruption in one sentence, without its leading capital: the pseudonym
    (engine/guard/pseudonym.py) with its value bias (value_bias.py), or the recall
    ablation alone."""
    from storage.rules import PSEUDONYM_FAMILY

    ablation = (f"recall ablation: {zeroed_layers(first, last)} at the tokens naming the "
                "person, in the prompt and in the answer")
    if family != PSEUDONYM_FAMILY:
        return ablation
    bias = (f"the tokens that would continue one of the facts only this person had are "
            f"lowered by {value_bias:.2f} nats, calibrated so that, on average over six people "
            "of the corpus, such facts are as likely as facts the model never saw; "
            if _number(value_bias) and value_bias > 0 else "")
    return ("pseudonym: each part of the person's name is replaced, before the model reads "
            "the prompt, by an invented name it never trained on, and written back as the "
            f"person's in the answer; {bias}a prompt that names none of the parts gets the "
            + ablation)
