"""Sentences of a forget-rule certificate that say what a figure rests on: how the
threshold was calibrated and on how many prompts, and how many examples were held out.

Rules trained before held-out calibration stored out-of-fold rates of other heads; those are
labelled as such, never as the deployed classifier's held-out rates.
"""

from __future__ import annotations

from typing import Any


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
    of other heads, labelled as such."""
    target = f"Calibrated for FPR at most {pct(cal.get('target_fpr'))}"
    rates = (f"TPR {pct(cal.get('tpr'))} on {n_before(cal.get('n_positive'))}forget and FPR "
             f"{pct(cal.get('fpr'))} on {n_before(cal.get('n_negative'))}other prompts")
    if cal.get("n_fit_positive") is not None:
        return (f"{target} on a calibration split the deployed classifier never trained on "
                f"(it trained on {cal['n_fit_positive']} forget and "
                f"{cal.get('n_fit_negative', '?')} other prompts): {rates}.")
    if cal.get("tpr") is None:
        return f"{target}."
    return (f"{target} on out-of-fold scores of other heads (a rule trained before held-out "
            f"calibration; the deployed classifier then trained on every prompt): {rates}.")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def n_before(value: Any) -> str:
    """'35 ' before a noun, or nothing when the count is unknown."""
    return f"{int(value)} " if _number(value) else ""


def on_prompts(value: Any) -> str:
    return f" on {int(value)} prompts" if _number(value) else ""


def count_cell(value: Any) -> str:
    return str(int(value)) if _number(value) else ""
