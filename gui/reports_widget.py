"""The Reports screen: pick a period, preview its figures and the time-to-erasure chart,
export the signed PDF report and the CSV (one row per request)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from gui.certificates_widget import ask_passphrase
from gui.context import AppContext
from gui.errors import reporting_errors
from gui.screen import Screen
from storage.errors import UnpromptError

ON_TIME, LATE = (31, 78, 121), (179, 38, 30)


def to_date(value: QDate) -> dt.date:
    return dt.date(value.year(), value.month(), value.day())


class ReportsWidget(Screen):
    title = "Reports"
    description = ("Signed period reports: requests, deadlines, time to erasure, audit results "
                   "and certificates issued.")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.facts: dict[str, Any] | None = None
        today = QDate.currentDate()
        self.from_edit = self._date_edit(today.addDays(-30))
        self.to_edit = self._date_edit(today)
        self.preview_button = QPushButton("Preview")
        self.pdf_button = QPushButton("Export signed PDF…")
        self.csv_button = QPushButton("Export CSV…")
        self.preview_button.clicked.connect(self._on_preview_button_clicked)
        self.pdf_button.clicked.connect(self._on_pdf_button_clicked)
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        row = QHBoxLayout()
        for widget in (QLabel("From"), self.from_edit, QLabel("to"), self.to_edit,
                       self.preview_button):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.pdf_button)
        row.addWidget(self.csv_button)
        self.body.addLayout(row)
        self.message = QLabel("Pick a period and press Preview.")
        self.message.setWordWrap(True)
        self.body.addWidget(self.message)
        self.figures: dict[str, QLabel] = {}
        self.body.addLayout(self._figures_form())
        self.chart = pg.PlotWidget()
        self.chart.setBackground("w")
        self.chart.setLabel("left", "days from receipt to erasure")
        self.chart.showGrid(y=True, alpha=0.25)
        self.chart.setMinimumHeight(180)
        self.body.addWidget(self.chart, 1)
        self.from_edit.dateChanged.connect(self._on_period_changed)
        self.to_edit.dateChanged.connect(self._on_period_changed)
        self._update_actions()

    def _date_edit(self, value: QDate) -> QDateEdit:
        edit = QDateEdit(value)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        return edit

    def _figures_form(self) -> QHBoxLayout:
        columns = QHBoxLayout()
        groups = [[("received", "Received"), ("approved", "Approved"),
                   ("rejected", "Rejected")],
                  [("executed", "Executed"), ("exact", "Made exact"),
                   ("certified", "Certified"), ("overdue", "Overdue")],
                  [("at_risk", "Due within 7 days"), ("timing", "Time to erasure"),
                   ("timing_exact", "Time to exact"), ("log", "Audit log")]]
        for group in groups:
            form = QFormLayout()
            for key, label in group:
                self.figures[key] = QLabel("–")
                form.addRow(f"{label}:", self.figures[key])
            columns.addLayout(form, 1)
        return columns

    def period(self) -> tuple[dt.date, dt.date]:
        return to_date(self.from_edit.date()), to_date(self.to_edit.date())

    def _update_actions(self) -> None:
        self.pdf_button.setEnabled(self.facts is not None)
        self.csv_button.setEnabled(self.facts is not None)

    def _on_period_changed(self) -> None:
        self.facts = None
        self._update_actions()

    def _on_preview_button_clicked(self) -> None:
        self.preview()

    def preview(self) -> dict[str, Any] | None:
        """Gather the period's facts and show them; a bad period shows its one sentence."""
        from reports.period_report import preview

        self.facts = None
        self._show(None)
        try:
            self.facts = preview(self.ctx.workspace, *self.period())
        except UnpromptError as exc:  # the period's one-sentence refusal
            self.message.setText(f"<span style='color:#b3261e'>{exc}.</span>")
        else:
            self._show(self.facts)
        self._update_actions()
        return self.facts

    def _show(self, f: dict[str, Any] | None) -> None:
        self.chart.clear()
        if f is None:
            for label in self.figures.values():
                label.setText("–")
            return
        for key, value in f["counts"].items():
            if key in self.figures:
                self.figures[key].setText(str(value))
        self.figures["overdue"].setText(_ids(f["overdue"]))
        self.figures["at_risk"].setText(_ids(f["at_risk"]))
        self.figures["timing"].setText(_times(f["time_to_erasure"], "no erasure"))
        self.figures["timing_exact"].setText(_times(f.get("time_to_exact"), "none made exact"))
        self.figures["log"].setText(("intact" if f["log"]["valid"] else "BROKEN")
                                    + f", head {f['log']['head_hash'][:12]}…")
        p = f["period"]
        self.message.setText(f"Period {p['from']} to {p['to']}: {len(f['requests'])} "
                             "request(s) in the report.")
        self._draw_chart(f)

    def _draw_chart(self, f: dict[str, Any]) -> None:
        done = [r for r in f["requests"] if "executed" in r["events_in_period"]]
        if not done:
            return
        xs = list(range(len(done)))
        brushes = [pg.mkBrush(*(LATE if r["late"] else ON_TIME)) for r in done]
        self.chart.addItem(pg.BarGraphItem(x=xs, height=[r["days_to_erasure"] for r in done],
                                           width=0.6, brushes=brushes))
        self.chart.addItem(pg.InfiniteLine(
            30, angle=0, label="due (30 days)", pen=pg.mkPen(LATE, style=Qt.PenStyle.DashLine),
            labelOpts={"color": LATE, "position": 0.08}))
        self.chart.getAxis("bottom").setTicks([[(x, f"#{r['id']}")
                                                for x, r in zip(xs, done, strict=True)]])
        self.chart.setYRange(0, max(35.0, max(r["days_to_erasure"] for r in done) * 1.1))

    def _on_pdf_button_clicked(self) -> None:
        start, end = self.period()
        default = str(Path.home() / f"erasure-report-{start}-{end}.pdf")
        path, _ = QFileDialog.getSaveFileName(self, "Save the signed report", default,
                                              "PDF (*.pdf)")
        if not path:
            return
        secret = ask_passphrase(self, "to sign the report")
        if secret is not None:
            self.export_pdf(path, secret)

    def export_pdf(self, path: str, secret: str) -> dict[str, Any] | None:
        from reports.period_report import write_report

        with reporting_errors(self, "Report not written"):
            result = write_report(self.ctx.workspace, *self.period(), path,
                                  operator=self.ctx.operator,
                                  passphrase=secret.encode("utf-8"), overwrite=True)
            self.message.setText(f"Signed report written to {result['pdf']}.")
            return result
        return None

    def _on_csv_button_clicked(self) -> None:
        start, end = self.period()
        default = str(Path.home() / f"erasure-report-{start}-{end}.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Save the CSV", default, "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> None:
        from reports.period_report import to_csv
        from reports.signing import write_file

        if self.facts is None:
            return
        with reporting_errors(self, "CSV not written"):
            write_file(Path(path), to_csv(self.facts).encode("utf-8"), overwrite=True)
            self.message.setText(f"CSV written to {path} (one row per request).")


def _ids(ids: list[int]) -> str:
    return "none" if not ids else f"{len(ids)} (" + ", ".join(f"#{i}" for i in ids) + ")"


def _times(t: dict[str, Any] | None, none: str) -> str:
    """Median, p90 and worst of a period's durations in days ('none' when there are none)."""
    if not t or not t.get("count"):
        return none
    return f"median {t['median']:.1f} d, p90 {t['p90']:.1f} d, worst {t['worst']:.1f} d"
