"""The Audits screen's panel for a person forgotten from a fine-tuned language model
(docs/design.md section 14): the TOFU / MUSE figures of the fine-tuned, guarded and retain
models, their truth-ratio histograms on the person's held-out questions, and the Min-K%++
membership ROC. Plain dicts from the registry (``storage.audits.get_people_audit``)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.audit_charts_widget import AuditPlot
from gui.chart_style import BEFORE, MODEL, REFERENCE, percent_ticks
from reports.subject_text import (
    MODELS,
    corruption_sentence,
    counts_sentence,
    reference_sentence,
    subject_rows,
)

COLOURS = {"fine-tuned": BEFORE, "guarded": MODEL, "retain": REFERENCE}


class TruthRatioChart(AuditPlot):
    """Truth ratios of the forgotten person's held-out questions, one outline per model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Truth ratio, forgotten person (held-out questions)", parent)
        self.plot.setLabel("bottom", "truth ratio (near 0: knows the fact; 2+: last bin)")
        self.plot.setLabel("left", "questions")

    def show_curves(self, histograms: dict[str, Any]) -> None:
        names = [n for n in MODELS if n in (histograms or {})]
        if not names:
            self.show_note("No truth ratios in this audit.")
            return
        self.begin()
        top = 1
        for name in names:
            hist = histograms[name]
            colour = pg.mkColor(COLOURS[name])
            brush = pg.mkBrush(colour.red(), colour.green(), colour.blue(), 70)
            self.add(name, pg.PlotDataItem(hist["edges"], hist["counts"], stepMode="center",
                                           fillLevel=0, brush=brush,
                                           pen=pg.mkPen(colour, width=2)))
            top = max(top, *hist["counts"])
        self.plot.setYRange(0, top * 1.5, padding=0)


class PeopleRocChart(AuditPlot):
    """Min-K%++: the person's records against records of people never trained on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Membership attack (Min-K%++ ROC)", parent)
        self.plot.setLabel("bottom", "false-positive rate")
        self.plot.setLabel("left", "true-positive rate")
        self.legend.setOffset((-6, -6))

    def show_curves(self, rocs: dict[str, Any]) -> None:
        names = [n for n in MODELS if n in (rocs or {})]
        if not names:
            self.show_note("No membership attack in this audit.")
            return
        self.begin()
        self.plot.addItem(pg.PlotDataItem([0, 1], [0, 1], pen=pg.mkPen("#bbbbbb", width=1,
                                                                        style=pg.QtCore.Qt.
                                                                        PenStyle.DashLine)))
        for name in names:
            self.add(name, pg.PlotDataItem(rocs[name]["fpr"], rocs[name]["tpr"],
                                           pen=pg.mkPen(COLOURS[name], width=2)))
        percent_ticks(self.plot)
        percent_ticks(self.plot, "bottom")
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)


class PeoplePanel(QWidget):
    """Figures table, reference sentence and the two charts of one people audit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Figure", *MODELS, "Target"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.
                                                           ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.truth_chart, self.roc_chart = TruthRatioChart(), PeopleRocChart()
        charts = QHBoxLayout()
        charts.addWidget(self.truth_chart, 3)
        charts.addWidget(self.roc_chart, 2)
        column = QVBoxLayout(self)
        column.addWidget(self.note)
        column.addWidget(self.table, 1)
        column.addLayout(charts, 1)

    def show_audit(self, audit: dict[str, Any] | None) -> None:
        """Draw a stored people audit (None: empty)."""
        subject = ((audit or {}).get("metrics") or {}).get("subject") or {}
        curves = ((audit or {}).get("curves") or {}).get("subject") or {}
        sentences = (reference_sentence(subject), counts_sentence(subject),
                     corruption_sentence(subject)) if subject else ()
        self.note.setText(" ".join(filter(None, sentences))
                          or "Pick an audit of a person's forget rule.")
        rows = subject_rows(subject) if subject else []
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.truth_chart.show_curves(curves.get("truth_ratio_histograms") or {})
        self.roc_chart.show_curves(curves.get("mia_roc") or {})


PEOPLE_JOB = "engine.guard.registry_jobs:evaluate_rule_job"


def people_problem(target: dict[str, Any], request: int | None) -> str:
    """Why the people audit of ``target`` cannot run for ``request`` ('' when it can)."""
    if not target["requests"]:
        return (f"{target['name']} has no executed request about a person: there is no "
                "forget rule to audit.")
    if request is None or request not in {r["id"] for r in target["requests"]}:
        return "Pick the request of the person to audit (Request above)."
    return ""


def people_job_options(target: dict[str, Any], request: int) -> dict[str, Any]:
    """`guard eval` of the request's rule; it verifies the request."""
    rule = next(r["rule"] for r in target["requests"] if r["id"] == request)
    return {"rule": rule, "model": target["name"], "request": request}
