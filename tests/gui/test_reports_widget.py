"""The Reports screen: preview a period, refuse a bad one, export PDF and CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import QDate

from gui.context import AppContext
from gui.reports_widget import ReportsWidget


@pytest.fixture()
def screen(qtbot, ctx: AppContext, seeded: dict) -> ReportsWidget:  # noqa: ANN001
    widget = ReportsWidget(ctx)
    qtbot.addWidget(widget)
    widget.show()
    widget.from_edit.setDate(QDate.currentDate().addDays(-40))
    return widget


def test_preview_shows_figures_and_chart(screen: ReportsWidget, seeded: dict) -> None:
    assert not screen.pdf_button.isEnabled()
    facts = screen.preview()
    assert facts is not None and facts["counts"]["received"] == 6
    assert screen.figures["received"].text() == "6"
    assert screen.figures["rejected"].text() == "1"
    assert f"#{seeded['overdue']}" in screen.figures["overdue"].text()
    assert f"#{seeded['at_risk']}" in screen.figures["at_risk"].text()
    assert "median" in screen.figures["timing"].text()
    assert screen.figures["exact"].text() == str(facts["counts"]["exact"])
    assert screen.figures["timing_exact"].text() == "none made exact" or \
        "median" in screen.figures["timing_exact"].text()
    assert screen.chart.getPlotItem().listDataItems() or screen.chart.getPlotItem().items
    assert screen.pdf_button.isEnabled() and screen.csv_button.isEnabled()


def test_bad_period_is_one_sentence(screen: ReportsWidget) -> None:
    screen.to_edit.setDate(QDate.currentDate().addDays(-50))
    assert screen.preview() is None
    assert "before it starts" in screen.message.text()
    assert not screen.pdf_button.isEnabled() and not screen.csv_button.isEnabled()
    assert screen.figures["received"].text() == "–"


def test_export_csv_and_signed_pdf(screen: ReportsWidget, tmp_path: Path,
                                   warnings_shown: list) -> None:
    screen.preview()
    screen.export_csv(str(tmp_path / "r.csv"))
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 6 and {r["status"] for r in rows} >= {"rejected", "executed"}
    result = screen.export_pdf(str(tmp_path / "r.pdf"), "pass phrase")
    assert warnings_shown == [] and result is not None
    data = (tmp_path / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF") and b"/ByteRange" in data
    assert "Signed report written" in screen.message.text()
