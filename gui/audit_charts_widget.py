"""The audit charts (pyqtgraph), each drawn next to the retrain reference (docs/design.md 5).

Input is the chart data an AuditRun stores (``engine/audit/compose.py``): plain dicts read
from the registry, so nothing here needs torch. Every ``show_*`` takes the whole ``curves``
dict and draws an empty chart with a note when its part is missing (an audit run without
the reference or the relearn attack).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.chart_style import (
    BEFORE,
    FORGOTTEN,
    MEMBERS,
    MODEL,
    NON_MEMBERS,
    REFERENCE,
    TEXT,
    percent_ticks,
    short_name,
    static_plot,
)

SERIES = {"model": ("this model", MODEL), "reference": ("retrain reference", REFERENCE)}
BAR = 0.27
BAND = "spread of two retrainings"  # reference to twin: the noise floor (design section 15)


class AuditPlot(pg.PlotWidget):
    """A static white plot with a title, a legend and a note shown when there is no data."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.plot = static_plot(self, min_height=190)
        self.plot.setTitle(title, color=TEXT, size="10pt")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-6, 6), labelTextColor=TEXT,
                                          brush=pg.mkBrush(255, 255, 255, 220))
        self.note = pg.TextItem("", color="#6b6b6b", anchor=(0.5, 0.5))
        self.series: dict[str, Any] = {}  # legend name -> item, for tests and tooltips

    def reset(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.series = {}

    def add(self, name: str, item: Any) -> None:
        self.plot.addItem(item)
        self.legend.addItem(item, name)
        self.series[name] = item

    def add_band(self, xs: list[float], low: list[float | None],
                 high: list[float | None]) -> None:
        """A light fill in the reference colour between two series on the same x values;
        its edges are plot items too, so a log-log chart transforms them like the rest."""
        colour = pg.mkColor(REFERENCE)
        brush = pg.mkBrush(colour.red(), colour.green(), colour.blue(), 60)
        pen = pg.mkPen(colour.red(), colour.green(), colour.blue(), 90, width=1)
        edges = [pg.PlotDataItem(xs, [v or 0.0 for v in ys], pen=pen) for ys in (low, high)]
        for edge in edges:
            self.plot.addItem(edge)
        fill = pg.FillBetweenItem(*edges, brush=brush)
        self.plot.addItem(fill)
        # the legend draws a sample of a plot-data item, not of a fill
        self.legend.addItem(pg.PlotDataItem([0.0], [0.0], pen=pen, fillLevel=0.0,
                                            brush=brush), BAND)
        self.series[BAND] = fill

    def show_note(self, text: str) -> None:
        """An empty chart that says why it is empty."""
        self.reset()
        self.legend.hide()
        self.note.setText(text)
        self.note.setPos(0.5, 0.5)
        self.plot.addItem(self.note)
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1)

    def begin(self, log: bool = False) -> None:
        self.reset()
        self.legend.show()
        self.plot.setLogMode(x=log, y=log)


class AccuracyBarsChart(AuditPlot):
    """Per-class test accuracy: before the forget, after it, and the retrain reference."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Per-class test accuracy", parent)
        self.legend.setColumnCount(4)
        self.legend.setOffset((6, 2))

    def show_curves(self, curves: dict[str, Any]) -> None:
        accuracy = curves.get("per_class_accuracy") or {}
        names = list(curves.get("classes") or accuracy.get("after") or {})
        if not names or "after" not in accuracy:
            self.show_note("No per-class accuracy in this audit.")
            return
        self.begin()
        xs = range(len(names))
        parts = [("before", "before", BEFORE), ("after", "after", MODEL),
                 ("reference", "retrain reference", REFERENCE)]
        present = [p for p in parts if accuracy.get(p[0])]
        for i, (key, label, colour) in enumerate(present):
            shift = (i - (len(present) - 1) / 2) * BAR
            heights = [float(accuracy[key].get(n) or 0.0) for n in names]
            self.add(label, pg.BarGraphItem(x=[x + shift for x in xs], height=heights,
                                            width=BAR, brush=colour, pen=pg.mkPen(None)))
        self._mark_forgotten(names, set(curves.get("forgotten") or []))
        self.plot.getAxis("bottom").setTicks([[(x, short_name(n)) for x, n in zip(
            xs, names, strict=True)]])
        percent_ticks(self.plot)
        self.plot.setYRange(0, 1.3, padding=0)  # the legend sits above 100%
        self.plot.setXRange(-0.6, len(names) - 0.4, padding=0)

    def _mark_forgotten(self, names: list[str], forgotten: set[str]) -> None:
        marks = [x for x, n in enumerate(names) if n in forgotten]
        if marks:
            self.add("forgotten", pg.ScatterPlotItem(
                x=marks, y=[0.03] * len(marks), symbol="x", size=12,
                pen=pg.mkPen(FORGOTTEN, width=2), brush=FORGOTTEN))


class RocChart(AuditPlot):
    """ROC of one membership attack for this model and the reference; linear or log-log."""

    def __init__(self, log: bool, parent: QWidget | None = None) -> None:
        super().__init__("ROC, log-log" if log else "ROC", parent)
        self.log = log
        self.plot.setLabel("bottom", "false-positive rate")
        self.plot.setLabel("left", "true-positive rate")
        # ROC curves near chance leave the top-left (linear) and the bottom-right (log-log)
        # corners free: the legend goes there
        self.legend.setOffset((-6, -6) if log else (6, 6))

    def show_curves(self, curves: dict[str, Any], attack: str, forget_only: bool,
                    aucs: dict[str, float]) -> None:
        """``aucs``: the attack's AUC per series ('model' / 'reference'), for the legend.
        RMIA is measured over all classes only; with a second reference (the twin) the
        band between the two references shows the spread of two retrainings."""
        scale = "log" if self.log else "linear"
        if attack == "rmia":
            rocs = {w: {"rmia": c} for w, c in (curves.get("rmia") or {}).items()}
        else:
            rocs = curves.get("forget_roc" if forget_only else "roc") or {}
        found = {w: rocs[w][attack][scale] for w in SERIES if attack in rocs.get(w, {})}
        if not found:
            self.show_note("No RMIA in this audit (it needs the retrain reference)."
                           if attack == "rmia" else "No ROC data in this audit.")
            return
        self.begin(self.log)
        twin = (rocs.get("twin") or {}).get(attack)
        if twin and "reference" in found:
            self._band(found["reference"], twin[scale])
        for which, points in found.items():
            label, colour = SERIES[which]
            auc = aucs.get(which)
            name = f"{label} (AUC {auc:.2f})" if isinstance(auc, float) else label
            style = pg.mkPen(colour, width=2)
            self.add(name, pg.PlotDataItem(points["fpr"], points["tpr"], pen=style))
        low = min(found[next(iter(found))]["fpr"]) if self.log else 0.0
        self.add("chance", pg.PlotDataItem([low, 1.0], [low, 1.0],
                                           pen=pg.mkPen("#888888", width=1, dash=[4, 4])))
        if not self.log:
            self.plot.setXRange(0, 1, padding=0.02)
            self.plot.setYRange(0, 1, padding=0.02)
        else:
            self.plot.enableAutoRange()

    def _band(self, reference: dict[str, list], twin: dict[str, list]) -> None:
        """Fill between the two retrain references' curves (on the same FPR grid)."""
        self.add_band(reference["fpr"], reference["tpr"], twin["tpr"])



class HistogramChart(AuditPlot):
    """Member vs non-member attack scores of one model (this one or the reference)."""

    def __init__(self, which: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Scores: {SERIES[which][0]}", parent)
        self.which = which
        self.plot.setLabel("left", "samples")

    def show_curves(self, curves: dict[str, Any], attack: str, forget_only: bool) -> None:
        part = ((curves.get("histograms") or {}).get(self.which) or {}).get(
            "forget" if forget_only else "all") or {}
        hist = part.get(attack)
        if attack == "rmia":
            self.show_note("RMIA scores are not kept:\nits ROC is drawn above.")
            return
        if not hist:
            self.show_note(f"No scores of the {SERIES[self.which][0]} in this audit.")
            return
        self.begin()
        self.plot.setLabel("bottom", f"{attack} score (higher: member)")
        for key, label, colour in (("members", "members (train)", MEMBERS),
                                   ("non_members", "non-members (test)", NON_MEMBERS)):
            brush = pg.mkBrush(pg.mkColor(colour).red(), pg.mkColor(colour).green(),
                               pg.mkColor(colour).blue(), 90)
            self.add(label, pg.PlotDataItem(hist["edges"], hist[key], stepMode="center",
                                            fillLevel=0, brush=brush,
                                            pen=pg.mkPen(colour, width=1.5)))
        self.plot.enableAutoRange(axis="x")
        top = max(max(hist["members"], default=0), max(hist["non_members"], default=0))
        self.plot.setYRange(0, max(top, 1) * 1.7, padding=0)  # the legend sits above


class RelearnChart(AuditPlot):
    """Relearn attack: the forgotten class's accuracy after n images, model vs reference."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Relearn attack", parent)
        self.plot.setLabel("bottom", "images of the forgotten class (per class)")
        self.plot.setLabel("left", "its test accuracy (relearned)")
        self.legend.setOffset((-6, -6))

    def show_curves(self, curves: dict[str, Any]) -> None:
        relearn = curves.get("relearn") or {}
        shots = relearn.get("shots") or []
        found = {w: relearn[w]["mean"] for w in SERIES if (relearn.get(w) or {}).get("mean")}
        if not shots or not found:
            self.show_note("The relearn attack was not run\n(tick 'Relearn attack').")
            return
        self.begin()
        xs = list(range(len(shots)))
        twin = (relearn.get("twin") or {}).get("mean")
        if twin and "reference" in found:
            self.add_band(xs, [found["reference"].get(str(n)) for n in shots],
                          [twin.get(str(n)) for n in shots])
        for which, mean in found.items():
            label, colour = SERIES[which]
            self.add(label, pg.PlotDataItem(xs, [mean.get(str(n)) for n in shots],
                                            pen=pg.mkPen(colour, width=2), symbol="o",
                                            symbolBrush=colour, symbolPen=colour,
                                            symbolSize=7))
        self.plot.getAxis("bottom").setTicks([[(x, str(n)) for x, n in zip(
            xs, shots, strict=True)]])
        percent_ticks(self.plot)
        self.plot.setYRange(0, 1.25, padding=0)
        self.plot.setXRange(-0.3, len(shots) - 0.7, padding=0)
