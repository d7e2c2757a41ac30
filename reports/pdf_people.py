"""The certificate's part about a person forgotten from a fine-tuned language model
(docs/design.md section 14): the TOFU / MUSE figures of the fine-tuned, guarded and retain
models, and their charts. Reads the ``subject`` figures of a validated manifest's audit."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from reports.pdf_style import FRAME_WIDTH, fonts, grid_table, p
from reports.subject_charts import roc_chart, truth_ratio_chart
from reports.subject_text import (
    MODELS,
    corruption_sentence,
    counts_sentence,
    reference_sentence,
    subject_rows,
)

EXPLAIN = ("Measured as TOFU (Maini et al. 2024) and MUSE (Shi et al. 2024) measure "
           "unlearning. Truth ratio: how much more likely the model finds wrong versions of a "
           "fact than the fact (near 0: it knows the fact). Forget quality: p-value of the "
           "Kolmogorov-Smirnov test between a model's truth ratios and the retain model's (a "
           "model that never met the person); at or above 0.05 the two cannot be told apart. "
           "Model utility: harmonic mean of answer probability, ROUGE-L and truth ratio on "
           "other people's questions. Membership attacks (LOSS, zlib, Min-K%, Min-K%++): AUC "
           "of the person's training records against records of people never trained on; "
           "PrivLeak is the relative gap of that AUC to the retain model's (0: no leak). "
           "Repetition: share of repeated word trigrams in the answers to the person's "
           "questions; perplexity: how natural the fine-tuned model finds those answers.")


def people_section(figures: dict[str, Any]) -> list[Flowable]:
    """The figures table and the two charts (nothing when the audit has no person)."""
    subject = figures.get("subject")
    if not subject:
        return []
    widths = [62 * mm, 25 * mm, 25 * mm, 25 * mm]
    out: list[Flowable] = [
        p("The person, against a model that never met them", "h2"),
        p(reference_sentence(subject) + " " + counts_sentence(subject)),
        grid_table(["Figure", *MODELS, "Target"], subject_rows(subject),
                   [*widths, FRAME_WIDTH - sum(widths)]),
        Spacer(1, 3), p(EXPLAIN, "small")]
    if corruption_sentence(subject):
        out.insert(2, p(corruption_sentence(subject)))
    charts = subject.get("charts") or {}
    font = fonts()[0]
    for title, chart, caption in (
            ("Truth ratios of the person's held-out questions",
             truth_ratio_chart(charts.get("truth_ratio_histograms") or {}, font),
             "The guarded model's distribution should sit on the retain model's, away from "
             "the fine-tuned model's (near 0, where the facts are known)."),
            ("Membership attack (Min-K%++ ROC)", roc_chart(charts.get("mia_roc") or {}, font),
             "The person's records against never-trained people's; the diagonal is chance.")):
        if chart is not None:
            out.append(KeepTogether([p(title, "h2"), chart, p(caption, "small")]))
    return out
