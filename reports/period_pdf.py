"""The period report as a PDF (reportlab): summary, deadlines, time to erasure with a chart,
what each model forgot, the audits against the thresholds, certificates, audit-log state."""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer

from reports.pdf_style import (
    FRAME_WIDTH,
    MUTED,
    PAGE_MARGIN,
    b,
    fonts,
    grid_table,
    key_value_table,
    markup,
    p,
    page_header,
)
from reports.period_clocks import two_clocks
from storage.audit_checks import verdict_word
from storage.erasure_kinds import KINDS, describe

BAR = colors.HexColor("#1f4e79")
LATE = colors.HexColor("#b3261e")


def render_period_pdf(facts: dict[str, Any], *, operator: str, signer: str | None = None
                      ) -> bytes:
    """The unsigned report PDF."""
    period = facts["period"]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=PAGE_MARGIN,
                            rightMargin=PAGE_MARGIN, topMargin=PAGE_MARGIN + 4 * mm,
                            bottomMargin=PAGE_MARGIN, author=operator, lang="en",
                            title=f"Erasure report {period['from']} to {period['to']}")
    story = (_summary(facts, operator, signer) + _deadlines(facts) + _timing(facts)
             + two_clocks(facts) + _forgotten(facts) + _audits(facts) + _certificates(facts)
             + _log(facts))
    decorate = _decoration(f"Unprompt erasure report {period['from']} to {period['to']}")
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()


def _summary(f: dict[str, Any], operator: str, signer: str | None) -> list[Flowable]:
    c, period = f["counts"], f["period"]
    rows = [("Period", f"{period['from']} to {period['to']} (UTC, both days included)"),
            ("Requests received", str(c["received"])), ("Approved", str(c["approved"])),
            ("Rejected", str(c["rejected"])), ("Executed (erased)", str(c["executed"])),
            ("Made exact", str(c.get("exact", 0))),
            ("Waiting for exact (retrain)", str(len(f.get("waiting_for_exact", [])))),
            ("Certified", str(c["certified"])),
            ("Overdue at period end", str(len(f["overdue"]))),
            ("Due within 7 days", str(len(f["at_risk"]))),
            ("Audit-log chain", "intact" if f["log"]["valid"] else "BROKEN"),
            ("Prepared by", operator)]
    intro = ("This report accounts for every erasure request handled in the period (GDPR "
             "Art. 5(2) accountability, Art. 30 records): what was asked, decided and done, "
             "how fast, how each erasure was verified, and which certificates were issued.")
    sig = ("It is signed electronically (PAdES)" + (f" with the key of {signer}" if signer
                                                    else "") + ".")
    return [p("UNPROMPT  ·  ERASURE ACCOUNTABILITY", "kicker"),
            p("Erasure requests: period report", "title"), p(intro), Spacer(1, 4),
            key_value_table(rows), Spacer(1, 3), p(sig, "small")]


def _deadlines(f: dict[str, Any]) -> list[Flowable]:
    out = [p("1. Requests and deadlines", "h1")]
    rows = [[f"#{r['id']}", r["model"], r["scope"], _status(r), _day(r["received_at"]),
             _day(r["due_at"]), _day(r["executed_at"])] for r in f["requests"]]
    widths = [12 * mm, 24 * mm, 30 * mm, 38 * mm, 22 * mm, 22 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    out.append(grid_table(["Req.", "Model", "Scope", "Status", "Received", "Due", "Erased"],
                          rows, widths))
    rejected = [r for r in f["requests"] if "rejected" in r["events_in_period"]]
    if rejected:
        out += [p("Rejected requests and the reasons given", "h2"),
                grid_table(["Req.", "Rejected", "Reason"],
                           [[f"#{r['id']}", _day(r["rejected_at"]), r["rejected_reason"] or ""]
                            for r in rejected],
                           [12 * mm, 24 * mm, FRAME_WIDTH - 36 * mm])]
    return out


def _status(r: dict[str, Any]) -> Any:
    if r["overdue"]:
        return markup(f"{r['status']}, <font color='#b3261e'><b>OVERDUE</b></font>", "cell")
    if r["at_risk"]:
        return markup(f"{r['status']}, <font color='#b36b00'><b>due within 7 days</b></font>",
                      "cell")
    if r["late"]:
        return markup(f"{r['status']}, <font color='#b3261e'>erased late</font>", "cell")
    return r["status"]


def _timing(f: dict[str, Any]) -> list[Flowable]:
    t = f["time_to_erasure"]
    out = [p("2. Time from receipt to erasure", "h1")]
    if not t["count"]:
        return out + [p("No request was erased in this period.")]
    out.append(p(f"{t['count']} erasure(s) in the period. Median {t['median']:.1f} days, "
                 f"90th percentile {t['p90']:.1f} days, worst {t['worst']:.1f} days; the "
                 "legal deadline is 30 days from receipt (GDPR Art. 12(3))."))
    executed = [r for r in f["requests"] if "executed" in r["events_in_period"]]
    caption = p("Days from receipt to erasure per request (red: erased after the deadline); "
                "the dashed line is the 30-day deadline.", "small")
    return [KeepTogether([*out, _chart(executed), caption])]


def _chart(rows: list[dict[str, Any]], width: float = 470, height: float = 170) -> Drawing:
    sans = fonts()[0]
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.height = 40, 30, height - 45
    chart.width = min(width - 100, 36 * len(rows) + 60)
    chart.data = [[r["days_to_erasure"] for r in rows]]
    chart.categoryAxis.categoryNames = [f"#{r['id']}" for r in rows]
    top = max(35.0, max(chart.data[0]) * 1.1)
    chart.valueAxis.valueMin, chart.valueAxis.valueMax = 0, top
    chart.valueAxis.valueStep = 10 if top <= 60 else 20
    for axis in (chart.valueAxis, chart.categoryAxis.labels):
        label = axis.labels if hasattr(axis, "labels") else axis
        label.fontName, label.fontSize = sans, 7
    chart.bars[0].fillColor, chart.bars[0].strokeColor = BAR, None
    for i, r in enumerate(rows):
        if r["late"]:
            chart.bars[(0, i)].fillColor = LATE
    chart.barWidth, chart.groupSpacing = 8, 8
    chart.barLabelFormat = "%.1f d"
    chart.barLabels.fontName, chart.barLabels.fontSize = sans, 6.5
    chart.barLabels.nudge = 6
    drawing.add(chart)
    y = chart.y + chart.height * 30 / top
    drawing.add(Line(chart.x, y, chart.x + chart.width, y, strokeColor=LATE,
                     strokeDashArray=[3, 2], strokeWidth=0.8))
    drawing.add(String(chart.x + chart.width + 4, y - 2, "due (30 days)", fontName=sans,
                       fontSize=7, fillColor=LATE))
    drawing.add(String(2, chart.y + chart.height / 2, "days", fontName=sans, fontSize=7,
                       fillColor=MUTED))
    return drawing


def _forgotten(f: dict[str, Any]) -> list[Flowable]:
    executed = [r for r in f["requests"] if "executed" in r["events_in_period"]]
    out = [p("3. What was forgotten, per model and forget rule", "h1")]
    if not executed:
        return out + [p("Nothing was erased in this period.")]
    rows = [[r["model"], r["scope"], f"#{r['id']}", _when(r["executed_at"]),
             "" if r["version_after"] is None else str(r["version_after"]),
             r["erasure_kind"] or ""]
            for r in sorted(executed, key=lambda r: (r["model"], r["executed_at"]))]
    widths = [30 * mm, 36 * mm, 14 * mm, 34 * mm, 18 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    kinds = sorted({r[-1] for r in rows if r[-1]}, key=lambda k: (k not in KINDS, k))
    legend = [markup(f"{b(k)}: {escape(describe(k))}", "small") for k in kinds]
    return out + [grid_table(["Model", "Forgotten", "Req.", "When (UTC)", "Version",
                              "Erasure"], rows, widths), Spacer(1, 4), *legend]


def _audits(f: dict[str, Any]) -> list[Flowable]:
    executed = [r for r in f["requests"] if "executed" in r["events_in_period"]]
    th = f["thresholds"]
    out = [p("4. Audit of each erasure against the thresholds", "h1"),
           p("Thresholds set by the operator: forget accuracy at most "
             f"{_pct(th.get('forget_accuracy_max'))}; MIA efficacy, distinguishability and "
             "relearn accuracy within "
             f"{_pp(th.get('mia_efficacy_gap'))}, {_pp(th.get('distinguishability_gap'))} "
             f"and {_pp(th.get('relearn_gap'))} of the retrain reference.", "small")]
    if not executed:
        return out + [p("No erasure to audit in this period.")]
    rows = []
    for r in executed:
        a = r["audit"]
        if a is None:
            rows.append([f"#{r['id']}", r["model"], "none", "", "", "", "",
                         _verdict(None, "no audit")])
            continue
        if a.get("kind") == "guard":  # a forget rule: its figures are in its certificate
            rows.append([f"#{r['id']}", r["model"], str(a["run_id"]), "guard audit", "", "", "",
                         _verdict(a["passed"])])
            continue
        mia = _pct(a["mia_efficacy"]) + (f" ({_pct(a['reference_mia_efficacy'])})"
                                         if a["reference_mia_efficacy"] is not None else "")
        rows.append([f"#{r['id']}", r["model"], str(a["run_id"]), _pct(a["forget_accuracy"]),
                     mia, _pct(a["distinguishability_auc"]), _pp(a["relearn_gap"]),
                     _verdict(a["passed"])])
    widths = [12 * mm, 24 * mm, 14 * mm, 20 * mm, 32 * mm, 22 * mm, 20 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    return out + [grid_table(["Req.", "Model", "Audit", "Forget acc.", "MIA eff. (ref.)",
                              "Disting. AUC", "Relearn gap", "Result"], rows, widths)]


def _certificates(f: dict[str, Any]) -> list[Flowable]:
    out = [p("5. Certificates issued", "h1")]
    if not f["certificates"]:
        return out + [p("No certificate was issued in this period.")]
    rows = [[c["certificate_id"], f"#{c['request']}", _when(c["created_at"]),
             p(c["manifest_sha256"], "hash")] for c in f["certificates"]]
    widths = [52 * mm, 12 * mm, 30 * mm]
    widths.append(FRAME_WIDTH - sum(widths))
    return out + [grid_table(["Certificate", "Req.", "Issued (UTC)", "Manifest SHA-256"],
                             rows, widths)]


def _log(f: dict[str, Any]) -> list[Flowable]:
    log = f["log"]
    state = ("intact: every entry recomputes and follows the previous one" if log["valid"]
             else f"BROKEN at entry {log['first_bad']}: {log['reason']}")
    rows = [("Chain", state), ("Entries", str(log["entries"])),
            ("Head hash", p(f"entry {log['head_seq']}, {log['head_hash']}", "hash"))]
    return [p("6. Audit log", "h1"), key_value_table(rows), Spacer(1, 3),
            p("The head hash fixes the registry's hash-chained log when this report was "
              "made; a later rewrite of earlier entries breaks the chain.", "small")]


def _decoration(title: str):  # noqa: ANN202 - reportlab page callback
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        page_header(canvas, title, doc.page)
        canvas.restoreState()

    return draw


def _verdict(passed: bool | None, word: str | None = None) -> Any:
    colour = {True: "#1e6b3a", False: "#b3261e", None: "#5b6470"}[passed]
    return markup(f"<font color='{colour}'><b>{word or verdict_word(passed)}</b></font>",
                  "cell")


def _day(ts: str | None) -> str:
    return ts[:10] if ts else ""


def _when(ts: str | None) -> str:
    return f"{ts[:10]} {ts[11:16]}" if ts else ""


def _pct(v: Any) -> str:
    return "" if not isinstance(v, int | float) else f"{v * 100:.1f}%"


def _pp(v: Any) -> str:
    return "" if not isinstance(v, int | float) else f"{v * 100:.1f} pp"
