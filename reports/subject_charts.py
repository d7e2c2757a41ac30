"""Charts of a person's audit (docs/design.md section 14), reportlab graphics: the
truth-ratio histograms of the fine-tuned, guarded and retain models on the forgotten
person's held-out questions, and the Min-K%++ membership ROC of each."""

from __future__ import annotations

from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors

from reports.charts import AFTER, BEFORE, REFERENCE

COLOURS = {"fine-tuned": BEFORE, "guarded": AFTER, "retain": REFERENCE}


def _legend(drawing: Drawing, names: list[str], font: str, x: float, y: float,
            per_column: int) -> None:
    legend = Legend()
    legend.x, legend.y, legend.fontName, legend.fontSize = x, y, font, 7
    legend.alignment, legend.columnMaximum, legend.dx, legend.dy = "right", per_column, 8, 8
    legend.deltax = 70
    legend.colorNamePairs = [(COLOURS[n], n) for n in names]
    drawing.add(legend)


def truth_ratio_chart(histograms: dict[str, Any], font: str, width: float = 440,
                      height: float = 160) -> Drawing | None:
    """Grouped bars: how many questions fall in each truth-ratio bin, per model."""
    names = [n for n in COLOURS if n in (histograms or {})]
    if not names:
        return None
    edges = histograms[names[0]]["edges"]
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 34, 30, width - 50, height - 56
    chart.data = [[float(c) for c in histograms[n]["counts"]] for n in names]
    chart.categoryAxis.categoryNames = [f"{e:.1f}" if i % 2 == 0 else ""
                                        for i, e in enumerate(edges[:-1])]
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.bars.strokeColor, chart.groupSpacing, chart.barSpacing = None, 2, 0
    for i, n in enumerate(names):
        chart.bars[i].fillColor = COLOURS[n]
    drawing.add(chart)
    drawing.add(String(chart.x + chart.width / 2, 6, "truth ratio (2.0 and above in the "
                       "last bin)", fontName=font, fontSize=7, textAnchor="middle"))
    _legend(drawing, names, font, chart.x + 10, height - 4, 1)
    return drawing


def roc_chart(rocs: dict[str, Any], font: str, width: float = 300,
              height: float = 180) -> Drawing | None:
    """Min-K%++ ROC of each model: forgotten person's records against never-trained ones."""
    names = [n for n in COLOURS if n in (rocs or {})]
    if not names:
        return None
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 36, 30, width - 120, height - 44
    plot.data = [[(0.0, 0.0), (1.0, 1.0)],
                 *[list(zip(rocs[n]["fpr"], rocs[n]["tpr"], strict=True)) for n in names]]
    plot.lines[0].strokeColor, plot.lines[0].strokeDashArray = colors.lightgrey, (2, 2)
    for i, n in enumerate(names, 1):
        plot.lines[i].strokeColor, plot.lines[i].strokeWidth = COLOURS[n], 1.4
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.valueMin, axis.valueMax, axis.valueStep = 0, 1, 0.25
        axis.labels.fontName, axis.labels.fontSize = font, 7
    drawing.add(plot)
    drawing.add(String(plot.x + plot.width / 2, 6, "false-positive rate", fontName=font,
                       fontSize=7, textAnchor="middle"))
    _legend(drawing, names, font, plot.x + plot.width + 14, plot.y + plot.height, 3)
    return drawing
