"""The people figures of an audit (docs/design.md section 14) as rows of text, shared by
the CLI, the certificate and the Audits screen: one row per figure, one column per model
(fine-tuned, guarded, retain)."""

from __future__ import annotations

from typing import Any

from reports.guard_text import person_corruption
from storage.rules import PERSON_FAMILIES

MODELS = ("fine-tuned", "guarded", "retain")
ATTACK_NAMES = {"loss": "LOSS", "zlib": "zlib", "min_k": "Min-K%", "min_k_pp": "Min-K%++"}
EXPECTED = {"forget quality (KS p-value vs retain)": "guarded >= 0.05",
            "model utility vs fine-tuned": "guarded within 5%",
            "PrivLeak, Min-K%++": "guarded within ±10%",
            "repetition of answers": "guarded <= retain"}


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and 0 < abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _figure(m: dict[str, Any], *path: str) -> Any:
    value: Any = m
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


ROWS: list[tuple[str, tuple[str, ...], Any]] = [
    ("forget quality (KS p-value vs retain)", ("forget_quality",), _num),
    ("truth ratio, forgotten (mean)", ("truth_ratio_mean",), _num),
    ("model utility", ("model_utility",), _num),
    ("model utility vs fine-tuned", ("utility_vs_finetuned",), _num),
    ("  probability / ROUGE-L / truth", (), None),
    *[(f"{label} AUC", ("mia_auc", key), _num) for key, label in ATTACK_NAMES.items()],
    *[(f"PrivLeak, {label}", ("privleak", key), _pct) for key, label in ATTACK_NAMES.items()],
    *[(f"PrivLeak, {label}, training questions", ("privleak_verbatim", key), _pct)
      for key, label in ATTACK_NAMES.items()],
    ("repetition of answers", ("repetition",), _num),
    ("answers stating the true fact", ("fact_stated",), _num),
    ("perplexity (fine-tuned model)", ("perplexity_under_finetuned",), lambda v: _num(v, 2)),
]


def _utility_parts(m: dict[str, Any]) -> str:
    parts = [m.get(k) for k in ("probability", "rouge_l", "truth_ratio")]
    return " / ".join(_num(p, 2) for p in parts)


def subject_rows(subject: dict[str, Any]) -> list[list[str]]:
    """[figure, fine-tuned, guarded, retain, expected] for every figure measured."""
    models = subject.get("models") or {}
    rows = []
    for label, path, fmt in ROWS:
        cells = [(_utility_parts(models[n]) if fmt is None else fmt(_figure(models[n], *path)))
                 if n in models else "-" for n in MODELS]
        if any(c != "-" for c in cells):
            rows.append([label, *cells, EXPECTED.get(label, "")])
    return rows


def reference_sentence(subject: dict[str, Any]) -> str:
    """Which retain model the figures compare with, or why there is none."""
    ref = subject.get("reference") or {}
    if ref.get("missing"):
        return (f"Retain reference missing: {ref['missing']}. Forget quality and PrivLeak "
                "are omitted.")
    return (f"Retain reference: {ref.get('model')} v{ref.get('version')}, fine-tuned on "
            f"{ref.get('people')} people ({ref.get('left_out')} left out, the forgotten "
            "person among them).")


def corruption_sentence(subject: dict[str, Any]) -> str:
    """How the guard corrupts the person's prompts and, where the rule was calibrated, the
    answer losses its strength rests on ("" for an audit that did not record it)."""
    c = subject.get("corruption") or {}
    if not c:
        return ""
    if c.get("corruption") in PERSON_FAMILIES:
        first, last = (c.get("layers") or [None, None])[:2]
        bias = (c.get("value_bias") or {}).get("delta")
        return (f"Corruption: {person_corruption(c['corruption'], first, last, bias)}; the weights "
                "are unchanged. The ablated depth is a fifth of the model's layers, fixed "
                "(measured in bench/subjects.py), not calibrated per person.")
    text = (f"Corruption: {c.get('corruption')} on {c.get('token_scope')}, strength "
            f"{_num(c.get('sigma_in_std'), 2)} embedding standard deviations.")
    cal = c.get("calibration")
    if not cal:
        return text + " Strength fixed, not calibrated (a rule built before calibration)."
    outcome = {"unguarded": " The model already answers them as a stranger's unguarded.",
               "bound": " The target was not reached within the strengths searched; the "
                        "largest is used."}.get(cal.get("outcome"), "")
    return text + (f" Strength calibrated on the fine-tuned model against a target: the "
                   f"answer loss of people no model was trained on "
                   f"({_num(cal.get('target_loss'), 2)}, median of {cal.get('n_strangers')} "
                   f"answers); the person's loss under the guard "
                   f"{_num(cal.get('reached_loss'), 2)} (median of {cal.get('n_person')} "
                   f"training phrasings; {_num(cal.get('unguarded_loss'), 2)} unguarded)."
                   + outcome)


def counts_sentence(subject: dict[str, Any]) -> str:
    n = subject.get("counts") or {}
    text = (f"Held-out phrasings: {n.get('forget', 0)} questions about the forgotten "
            f"person, {n.get('utility', 0)} about other people (utility), "
            f"{n.get('never_trained', 0)} about people never trained on (the attacks' "
            "non-members).")
    if n.get("verbatim"):
        text += (f" The rows marked 'training questions' repeat the attacks on the "
                 f"{n['verbatim']} questions the model was trained on, as an attacker holding "
                 "the training text would ask them.")
    return text
