"""Audit charts for the certificate, drawn with reportlab graphics (vector, no Qt, no torch).

Input is the chart data the audits store (engine/audit/compose.py): ``per_class_accuracy``
(``before`` / ``after`` / ``reference``: class name -> accuracy), ``forget_roc`` or ``roc``
(``model`` / ``reference``: attack -> ``linear`` -> ``fpr`` / ``tpr``), ``relearn``
(``shots`` plus ``model`` / ``reference`` -> ``mean`` -> n -> accuracy) and ``forgotten``.
Each builder returns ``None`` when its data is missing, so a partial audit still renders.
"""

from __future__ import annotations

from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Group, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

BEFORE = colors.HexColor("#9aa5b1")
AFTER = colors.HexColor("#1f4e79")
REFERENCE = colors.HexColor("#d08c1f")
FORGOTTEN = colors.HexColor("#b3261e")
SERIES = {"before": ("Before erasure", BEFORE), "after": ("After erasure", AFTER),
          "model": ("This model", AFTER), "reference": ("Retrain reference", REFERENCE)}


def chart_drawings(data: dict[str, Any] | None, font: str = "Helvetica"
                   ) -> list[tuple[str, Drawing, str]]:
    """``(title, drawing, caption)`` for every chart the data allows."""
    if not data:
        return []
    found = [
        ("Per-class test accuracy", accuracy_bars(data, font=font),
         "Accuracy of each class on held-out test images. The erased class "
         "(red label) must drop to zero, as in the model retrained without it."),
        ("Membership-inference attack (ROC)", roc_chart(data, font=font),
         "The strongest threshold attack separating the erased class's training images from "
         "its unseen test images. A curve on the diagonal means the model no longer tells "
         "them apart."),
        ("Relearn attack", relearn_chart(data, font=font),
         "Accuracy on the erased class after re-training a fresh prompt on n images. "
         "Close to the retrain reference means no hidden knowledge makes relearning easier."),
    ]
    return [(t, d, c) for t, d, c in found if d is not None]


def accuracy_bars(data: dict[str, Any], width: float = 470, height: float = 210,
                  font: str = "Helvetica") -> Drawing | None:
    """Grouped bars: per-class accuracy before, after and in the retrain reference."""
    per_class = data.get("per_class_accuracy") or {}
    series = [k for k in ("before", "after", "reference") if per_class.get(k)]
    if not series:
        return None
    names = list(per_class[series[0]])
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 38, 58, width - 50, height - 88
    chart.data = [[float(per_class[k].get(n, 0.0)) for n in names] for k in series]
    chart.categoryAxis.categoryNames = [_short(n) for n in names]
    _style_category_labels(chart, font)
    _percent_axis(chart.valueAxis, font)
    chart.barSpacing, chart.groupSpacing = 0.5, 6
    for i, key in enumerate(series):
        chart.bars[i].fillColor = SERIES[key][1]
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    _mark_forgotten(drawing, chart, names, data.get("forgotten") or [], font)
    drawing.add(_legend([SERIES[k] for k in series], 38, height - 8, font))
    return drawing


def roc_chart(data: dict[str, Any], size: float = 225, font: str = "Helvetica"
              ) -> Drawing | None:
    """ROC of a threshold attack for this model and the retrain reference, with chance line."""
    curves = data.get("forget_roc") or data.get("roc") or {}
    attack = _strongest_attack(curves, data.get("distinguishability") or {})
    if attack is None:
        return None
    drawing = Drawing(size, size)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 38, 34, size - 50, size - 70
    keys = [k for k in ("model", "reference") if attack in (curves.get(k) or {})]
    plot.data = [_roc_points(curves[k][attack]) for k in keys] + [[(0.0, 0.0), (1.0, 1.0)]]
    for i, key in enumerate(keys):
        plot.lines[i].strokeColor, plot.lines[i].strokeWidth = SERIES[key][1], 1.6
    chance = len(keys)
    plot.lines[chance].strokeColor, plot.lines[chance].strokeDashArray = colors.grey, (2, 2)
    plot.lines[chance].strokeWidth = 0.6
    for axis in (plot.xValueAxis, plot.yValueAxis):
        _percent_axis(axis, font, step=0.25)
    drawing.add(plot)
    _axis_titles(drawing, plot, "false-positive rate", "true-positive rate", font)
    legend = [SERIES[k] for k in keys] + [("Chance", colors.grey)]
    drawing.add(_legend(legend, 20, size - 6, font, columns=3, width=size - 20))
    drawing.add(String(size - 12, 40, f"{attack} attack", fontName=font, fontSize=7,
                       textAnchor="end", fillColor=colors.grey))
    return drawing


def relearn_chart(data: dict[str, Any], size: float = 225, font: str = "Helvetica"
                  ) -> Drawing | None:
    """Relearn accuracy against the number of images n, model vs retrain reference."""
    relearn = data.get("relearn") or {}
    keys = [k for k in ("model", "reference") if relearn.get(k)]
    if not keys:
        return None
    means = {k: relearn[k].get("mean", relearn[k]) for k in keys}
    shots = [int(n) for n in relearn.get("shots") or sorted(means[keys[0]], key=int)]
    drawing = Drawing(size, size)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 38, 34, size - 50, size - 70
    plot.data = [[(float(n), float(means[k].get(str(n), 0.0))) for n in shots] for k in keys]
    for i, key in enumerate(keys):
        plot.lines[i].strokeColor, plot.lines[i].strokeWidth = SERIES[key][1], 1.6
        plot.lines[i].symbol = makeMarker("FilledCircle", size=4, fillColor=SERIES[key][1])
    _percent_axis(plot.yValueAxis, font, step=0.25)
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, max(shots) * 1.05
    plot.xValueAxis.valueSteps = shots
    plot.xValueAxis.labels.fontName, plot.xValueAxis.labels.fontSize = font, 7
    drawing.add(plot)
    _axis_titles(drawing, plot, "images of the erased class (n)", "accuracy", font)
    drawing.add(_legend([SERIES[k] for k in keys], 20, size - 6, font, columns=2,
                        width=size - 20))
    return drawing


def _roc_points(curve: dict[str, Any]) -> list[tuple[float, float]]:
    linear = curve.get("linear", curve)
    return [(float(x), float(y)) for x, y in zip(linear["fpr"], linear["tpr"], strict=False)]


def _strongest_attack(curves: dict[str, Any], aucs: dict[str, Any]) -> str | None:
    """The attack that best separates forget-train from forget-test images on this model
    (AUC furthest from chance), else the first of loss / confidence / entropy."""
    attacks = list(curves.get("model") or curves.get("reference") or {})
    scored = {a: abs(float(v) - 0.5) for a, v in (aucs.get("model") or {}).items()
              if a in attacks and isinstance(v, int | float)}
    if scored and max(scored.values()) > 0:
        return max(scored, key=lambda a: (scored[a], -attacks.index(a)))
    for preferred in ("loss", "confidence", "entropy"):
        if preferred in attacks:
            return preferred
    return attacks[0] if attacks else None


def _percent_axis(axis: Any, font: str, step: float = 0.2) -> None:
    axis.valueMin, axis.valueMax, axis.valueStep = 0.0, 1.0, step
    axis.labelTextFormat = lambda v: f"{v * 100:.0f}%"
    axis.labels.fontName, axis.labels.fontSize = font, 7
    axis.strokeColor = colors.grey
    if hasattr(axis, "gridStrokeColor"):
        axis.visibleGrid, axis.gridStrokeColor, axis.gridStrokeWidth = 1, colors.lightgrey, 0.3


def _style_category_labels(chart: VerticalBarChart, font: str) -> None:
    labels = chart.categoryAxis.labels
    labels.fontName, labels.fontSize, labels.angle = font, 7, 30
    labels.boxAnchor, labels.dx, labels.dy = "ne", 4, -2


def _mark_forgotten(drawing: Drawing, chart: VerticalBarChart, names: list[str],
                    forgotten: list[str], font: str) -> None:
    """Colour the erased classes' axis labels red."""
    for i, name in enumerate(names):
        if name in forgotten:
            chart.categoryAxis.labels[i].fillColor = FORGOTTEN
            chart.categoryAxis.labels[i].fontName = font


def _axis_titles(drawing: Drawing, plot: LinePlot, x_title: str, y_title: str,
                 font: str) -> None:
    drawing.add(String(plot.x + plot.width / 2, 8, x_title, fontName=font, fontSize=7,
                       textAnchor="middle"))
    title = String(0, 0, y_title, fontName=font, fontSize=7, textAnchor="middle")
    group = Group(title)
    group.translate(9, plot.y + plot.height / 2)
    group.rotate(90)
    drawing.add(group)


def _legend(pairs: list[tuple[str, Any]], x: float, y: float, font: str,
            columns: int = 3, width: float = 270) -> Legend:
    legend = Legend()
    legend.x, legend.y, legend.alignment = x, y, "right"
    legend.colorNamePairs = [(color, label) for label, color in pairs]
    legend.fontName, legend.fontSize = font, 7
    legend.columnMaximum, legend.dx, legend.dy = 1 if columns > 1 else len(pairs), 7, 7
    legend.deltax, legend.boxAnchor = min(90.0, width / len(pairs)), "nw"
    return legend


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
