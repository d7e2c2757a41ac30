"""The certificate's audit parts: the measured residual, section 5 (figures against the
retrain reference, the pass / fail checks against the workspace thresholds, the charts)."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer, Table

from reports.charts import chart_drawings
from reports.pdf_noise import noise_section
from reports.pdf_style import FRAME_WIDTH, fonts, grid_table, markup, p

FIGURES = [  # label, path in the figures object, what a good erasure looks like
    ("Forget accuracy (training images)", ("scorecard", "forget_accuracy"), "about 0%"),
    ("Retained classes, training accuracy", ("scorecard", "retain_accuracy"), "near reference"),
    ("Retained classes, test accuracy", ("scorecard", "test_accuracy"), "near reference"),
    ("MIA efficacy, label-free top-1", ("mia_efficacy_top1",), "near reference"),
    ("MIA efficacy, SalUn (true label)", ("mia_efficacy",), "about 100%"),
    ("Forget distinguishability AUC", ("forget_distinguishability_auc",), "about 50%"),
    ("Loss attack AUC", ("threshold_attacks", "loss", "auc"), "near reference"),
    ("Loss attack TPR at 1% FPR", ("threshold_attacks", "loss", "tpr_at_1pct_fpr"), "low"),
    ("Confidence attack AUC", ("threshold_attacks", "confidence", "auc"), "near reference"),
    ("Entropy attack AUC", ("threshold_attacks", "entropy", "auc"), "near reference"),
    ("Linear probe, erased class", ("linear_probe", "forget_accuracy"), "near reference"),
    ("Relearn accuracy, n = 1", ("relearn", "1"), "near reference"),
    ("Relearn accuracy, n = 5", ("relearn", "5"), "near reference"),
    ("Relearn accuracy, n = 20", ("relearn", "20"), "near reference"),
    ("LiRA AUC", ("lira", "auc"), "about 50%"),
    ("RMIA AUC", ("rmia", "auc"), "near reference"),
    ("RMIA TPR at 1% FPR", ("rmia", "tpr_at_1pct_fpr"), "near reference"),
    ("RMIA TPR at 0.1% FPR", ("rmia", "tpr_at_0_1pct_fpr"), "near reference"),
]
RESIDUAL_LABELS = {  # in the order of the table
    "relearn_accuracy_1_shots": "Relearn accuracy after 1 image",
    "relearn_accuracy_5_shots": "Relearn accuracy after 5 images",
    "relearn_accuracy_20_shots": "Relearn accuracy after 20 images",
    "relearn_largest_gap": "Relearn accuracy, largest gap to the reference",
    "mia_efficacy_top1": "MIA efficacy, label-free top-1 (share judged non-member)",
    "mia_efficacy": "MIA efficacy, SalUn (share judged non-member)",
    "mia_efficacy_degenerate": "SalUn MIA efficacy degenerate (no output for the class)",
    "forget_distinguishability_auc": "Forget distinguishability AUC",
    "linear_probe_forget_accuracy": "Linear probe on features, erased class",
}
PREFIX = "reference_"


def residual_table(residual: dict[str, Any]) -> Table:
    """Measure | this model | retrain reference | gap; ``reference_<key>`` pairs with
    ``<key>``."""
    rows = []
    order = list(RESIDUAL_LABELS)
    for key, value in sorted(residual.items(), key=lambda kv: _rank(order, kv[0])):
        if key.startswith(PREFIX) and key[len(PREFIX):] in residual:
            continue
        label = RESIDUAL_LABELS.get(key, _humanize(key))
        if key.endswith("_gap") and isinstance(value, int | float):
            rows.append([label, "", "", f"{value * 100:.1f} pp"])
            continue
        ref = residual.get(PREFIX + key)
        rows.append([label, _value(value), _value(ref), _gap(value, ref)])
    widths = [80 * mm, 26 * mm, 30 * mm, FRAME_WIDTH - 136 * mm]
    return grid_table(["Measure", "This model", "Retrain reference", "Gap"], rows, widths)


def audit_section(m: dict[str, Any], charts_data: dict[str, Any] | None) -> list[Flowable]:
    audit = m.get("audit")
    out: list[Flowable] = [p("5. Audit against the retrain reference", "h1")]
    if not audit:
        return out + [p("No audit was recorded for this erasure. The certificate rests on the "
                        "execution record, the purge and the residual scan above.")]
    out.append(p(_audit_intro(audit)))
    out.append(_figures_table(audit["figures"], audit.get("reference") or {}))
    if audit.get("checks"):
        out += [p("Pass / fail against the workspace thresholds", "h2"),
                _checks_table(audit["checks"]), Spacer(1, 3), p(_checks_note(audit), "small")]
    out += noise_section(audit.get("noise"))
    drawings = chart_drawings(charts_data, font=fonts()[0])
    return out + _chart_flowables(drawings)


def _audit_intro(audit: dict[str, Any]) -> str:
    verdict = {True: "passed", False: "FAILED", None: "not assessed"}[audit.get("passed")]
    run = f"audit run {audit['run_id']}" if audit.get("run_id") is not None else "the audit"
    ref = audit.get("reference_id") or "a model retrained without the erased data"
    return (f"Result of {run}: {verdict}. Each figure is compared with the retrain reference "
            f"({ref}), the model that never saw the erased data. Rates are percentages.")


def _figures_table(model: dict[str, Any], ref: dict[str, Any]) -> Table:
    rows = []
    for label, path, good in FIGURES:
        a, r = _get(model, path), _get(ref, path)
        if a is None and r is None:
            continue
        rows.append([label, _pct(a), _pct(r), _gap(a, r), good])
    widths = [62 * mm, 22 * mm, 26 * mm, 18 * mm, FRAME_WIDTH - 128 * mm]
    return grid_table(["Figure", "This model", "Retrain reference", "Gap", "Expected"],
                      rows, widths)


def _checks_table(checks: list[dict[str, Any]]) -> Table:
    rows = []
    for check in checks:
        if check.get("name") == "rederive":  # bytes, not rates (docs/design.md section 17)
            rows.append([check["label"], f"{len(check['identical'])} of "
                         f"{len(check['classes'])} identical", "every class identical",
                         verdict_cell(check.get("passed"))])
            continue
        limit = f"at most {_pct(check['limit'])}" if check.get("kind") == "max" \
            else f"gap at most {check['limit'] * 100:.1f} pp"
        measured = "" if check.get("measured") is None else (
            _pct(check["measured"]) if check.get("kind") == "max"
            else f"{check['measured'] * 100:.1f} pp")
        rows.append([check.get("label", check.get("name", "")), measured, limit,
                     verdict_cell(check.get("passed"))])
    widths = [76 * mm, 22 * mm, 34 * mm, FRAME_WIDTH - 132 * mm]
    return grid_table(["Check", "Measured", "Threshold", "Result"], rows, widths)


def _checks_note(audit: dict[str, Any]) -> str:
    word = {True: "passes", False: "fails", None: "is not assessed"}[audit.get("passed")]
    return (f"The audit {word}: it fails when any check fails, and passes only when every "
            "check was measured and passed. Gaps are absolute differences to the retrain "
            "reference in percentage points (pp); the thresholds are the workspace settings "
            "when the certificate was issued.")


def verdict_cell(passed: bool | None) -> Any:
    colour, word = {True: ("#1e6b3a", "pass"), False: ("#b3261e", "FAIL"),
                    None: ("#5b6470", "not measured")}[passed]
    return markup(f"<font color='{colour}'><b>{word}</b></font>", "cell")


def _chart_flowables(drawings: list[tuple[str, Any, str]]) -> list[Flowable]:
    out: list[Flowable] = []
    wide = [d for d in drawings if d[1].width > FRAME_WIDTH / 2]
    narrow = [d for d in drawings if d[1].width <= FRAME_WIDTH / 2]
    for title, drawing, caption in wide:
        out.append(KeepTogether([p(title, "h2"), drawing, p(caption, "small")]))
    if narrow:
        cells = [[p(t, "h2"), d, p(c, "small")] for t, d, c in narrow]
        out.append(KeepTogether(Table([cells], colWidths=[FRAME_WIDTH / 2] * len(cells),
                                      hAlign="LEFT", style=[("VALIGN", (0, 0), (-1, -1), "TOP")])))
    return out


def _get(obj: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return float(obj) if isinstance(obj, int | float) and not isinstance(obj, bool) else None


def _rank(order: list[str], key: str) -> tuple[int, str]:
    return (order.index(key) if key in order else len(order), key)


def _gap(a: Any, r: Any) -> str:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, r))
    return f"{(float(a) - float(r)) * 100:+.1f} pp" if numbers else ""


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return _pct(value)
    return str(value)


def _humanize(key: str) -> str:
    return key.replace("_", " ").capitalize()
