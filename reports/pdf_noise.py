"""The certificate's verdicts against noise (docs/design.md section 15): every headline
figure with its 95% interval, its gap to the retrain reference against the spread of two
retrainings, and the verdict of each class with the number of samples it rests on."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from reports.noise_facts import verdict_phrase
from reports.pdf_style import FRAME_WIDTH, grid_table, markup, p

COLOURS = {"pass": ("#1e6b3a", "pass"), "fail": ("#b3261e", "FAIL"),
           "inconclusive": ("#8a5a00", "inconclusive"), None: ("#5b6470", "not judged")}


def noise_section(noise: dict[str, Any] | None) -> list[Flowable]:
    """Heading, the overall sentence, the figure table and the class table."""
    out: list[Flowable] = [p("Verdicts against noise", "h2")]
    if not noise:
        return out + [p("This audit was recorded before confidence intervals were measured: "
                        "its figures are point values, and no verdict against noise is "
                        "stated.")]
    out += [p(overall_sentence(noise)), _figure_table(noise["figures"]), Spacer(1, 4)]
    if noise.get("classes"):
        out += [p("Per class", "h2"), _class_table(noise["classes"]), Spacer(1, 3)]
    return out + [p(_method_note(noise), "small")]


def overall_sentence(noise: dict[str, Any]) -> str:
    counts, classes = noise.get("counts") or {}, noise.get("class_counts") or {}
    word = {"pass": "passes", "fail": "fails", "inconclusive": "is inconclusive",
            None: "is not judged"}[noise.get("verdict")]
    return (f"Against the noise of retraining, the audit {word} overall "
            f"({_count_words(counts)} of its figures; the largest rests on "
            f"{noise.get('samples', 0)} samples). Per class: {_count_words(classes)}.")


def _figure_table(figures: list[dict[str, Any]]) -> Any:
    rows = [[f["label"], _value(f, "model"), _value(f, "reference"),
             _value(f, "gap", signed=True), _pct(f.get("floor")), str(f.get("samples", "")),
             _verdict(f)] for f in figures]
    widths = [38 * mm, 27 * mm, 17 * mm, 27 * mm, 14 * mm, 12 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    return grid_table(["Figure", "This model (95% CI)", "Ref.", "Gap (95% CI)", "Floor",
                       "n", "Verdict"], rows, widths)


def _class_table(classes: list[dict[str, Any]]) -> Any:
    rows = [[c["class"], str(c.get("samples", "")), verdict_cell(c.get("verdict")),
             p(_decided(c), "cell")] for c in classes]
    widths = [24 * mm, 14 * mm, 27 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    return grid_table(["Class", "n", "Verdict", "Decided by"], rows, widths)


def _decided(c: dict[str, Any]) -> str:
    if "decided_by" not in c:
        return "every judged figure within the spread of two retrainings" \
            if c.get("verdict") == "pass" else "no figure could be judged"
    return f"{c['decided_by']}: {verdict_phrase(c)}"


def _verdict(f: dict[str, Any]) -> Any:
    """The word, and what decides it where the other columns do not say it already."""
    verdict = f.get("verdict")
    colour, word = COLOURS[verdict]
    detail = {"fail": lambda: f"beyond the floor by {_pct(f['beyond'])} (95% CI "
                              f"{f['beyond_ci'][0] * 100:.1f} to {f['beyond_ci'][1] * 100:.1f})",
              None: lambda: f.get("reason") or "not measured"}.get(verdict)
    tail = f": {detail()}" if detail else ""
    return markup(f"<font color='{colour}'><b>{word}</b></font>{tail}", "cell")


def verdict_cell(verdict: str | None) -> Any:
    colour, word = COLOURS[verdict]
    return markup(f"<font color='{colour}'><b>{word}</b></font>", "cell")


def _value(f: dict[str, Any], key: str, signed: bool = False) -> str:
    value = f.get(key)
    if value is None:
        return "omitted"
    text = f"{value * 100:+.1f} pp" if signed else f"{value * 100:.1f}%"
    ci = f.get(f"{key}_ci")
    if ci:
        text += f" ({ci[0] * 100:.1f} to {ci[1] * 100:.1f})"
    return text


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f} pp"


def _count_words(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(k, 0)} {w}" for k, w in (("pass", "pass"), ("fail", "fail"),
                                                    ("inconclusive", "inconclusive"),
                                                    ("not_judged", "not judged"))]
    return ", ".join(parts)


def _method_note(noise: dict[str, Any]) -> str:
    return (f"Intervals: {noise.get('resamples')} bootstrap resamples of the audit samples "
            f"(train and test separately; the relearn figures over relearn seeds), "
            f"{(noise.get('level') or 0.95):.0%} percentile intervals; the gap's interval is "
            "paired (every model is measured on the same resample). The floor is the gap "
            "between two retrain references trained with different seeds. A verdict passes "
            "when the gap's whole interval lies within the floor, fails when it lies wholly "
            "beyond it, and is inconclusive otherwise. A figure resting on too few samples "
            "is omitted, with the reason, rather than quoted.")
