"""Charts of a forget-rule certificate (reportlab graphics): the knowledge of the topic
without and with the guard next to the ignorant reference, and the strength search."""

from __future__ import annotations

from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker

from reports.charts import AFTER, BEFORE, REFERENCE


def knowledge_chart(knowledge: dict[str, Any], font: str, width: float = 300,
                    height: float = 150) -> Drawing | None:
    """Three bars: knowledge before, after the guard, and the ignorant reference."""
    bars = [(label, knowledge.get(key), colour) for label, key, colour in (
        ("Unguarded", "before", BEFORE), ("Guarded", "after", AFTER),
        ("Ignorant reference", "ignorant", REFERENCE)) if knowledge.get(key) is not None]
    if len(bars) < 3:  # nothing to compare without the guarded score
        return None
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 24, width - 60, height - 40
    chart.data = [[float(v) for _, v, _ in bars]]
    chart.categoryAxis.categoryNames = [label for label, _, _ in bars]
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 1, 0.25
    chart.valueAxis.labelTextFormat = lambda v: f"{v * 100:.0f}%"
    for i, (_, _, colour) in enumerate(bars):
        chart.bars[(0, i)].fillColor = colour
    chart.bars.strokeColor = None
    drawing.add(chart)
    return drawing


def trace_chart(trace: list[dict[str, Any]], font: str, width: float = 300,
                height: float = 150) -> Drawing | None:
    """Knowledge against sigma, in the order the search tried them."""
    points = [(float(s["sigma"]), float(s["knowledge"])) for s in trace
              if s.get("sigma") is not None and s.get("knowledge") is not None]
    if len(points) < 2:
        return None
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 40, 30, width - 60, height - 44
    plot.data = [sorted(points)]
    plot.lines[0].strokeColor, plot.lines[0].strokeWidth = AFTER, 1.4
    plot.lines[0].symbol = makeMarker("FilledCircle", size=4, fillColor=AFTER)
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = 0, 1
    plot.yValueAxis.labelTextFormat = lambda v: f"{v * 100:.0f}%"
    plot.xValueAxis.valueMin = 0
    plot.xValueAxis.labelTextFormat = "%.2g"
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontName, axis.labels.fontSize = font, 7
    drawing.add(plot)
    drawing.add(String(plot.x + plot.width / 2, 4, "strength sigma", fontName=font,
                       fontSize=7, textAnchor="middle"))
    return drawing
