"""Per-class accuracy before and after a change, as paired bars (pyqtgraph)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.chart_style import static_plot

BEFORE, AFTER, FORGOTTEN = "#b8bcc2", "#2f7fc1", "#c0392b"
BAR = 0.38


class AccuracyChart(pg.PlotWidget):
    """Bars per class: grey before, blue after; a forgotten class gets a red mark at 0%."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        plot = static_plot(self)
        plot.showGrid(y=True, alpha=0.25)
        plot.setLabel("left", "test accuracy")
        plot.getAxis("left").setTicks([[(v / 4, f"{v * 25}%") for v in range(5)]])
        self.legend = plot.addLegend(offset=(6, 2), labelTextColor="#333333",
                                     colCount=2)

    def set_bars(self, names: list[str], before: list[float | None], after: list[float],
                 forgotten: set[str]) -> None:
        """Draw ``before`` (None: not measured) and ``after`` for each class in ``names``."""
        plot = self.getPlotItem()
        plot.clear()
        self.legend.clear()
        xs = list(range(len(names)))
        measured = [(x, b) for x, b in zip(xs, before, strict=True) if b is not None]
        if measured:
            bars = pg.BarGraphItem(x=[x - BAR / 2 for x, _ in measured],
                                   height=[b for _, b in measured], width=BAR,
                                   brush=BEFORE, pen=pg.mkPen(None))
            plot.addItem(bars)
            self.legend.addItem(bars, "before")
        shift = BAR / 2 if measured else 0.0
        now = pg.BarGraphItem(x=[x + shift for x in xs], height=after,
                              width=BAR if measured else 2 * BAR, brush=AFTER,
                              pen=pg.mkPen(None))
        plot.addItem(now)
        self.legend.addItem(now, "after" if measured else "accuracy")
        self._mark_forgotten(xs, names, forgotten, shift)
        plot.getAxis("bottom").setTicks([[(x, _short(n)) for x, n in zip(xs, names,
                                                                         strict=True)]])
        plot.setYRange(0, 1.65, padding=0)  # the legend (two rows) sits above 100%
        plot.setXRange(-0.6, max(len(names) - 0.4, 0.6), padding=0)

    def _mark_forgotten(self, xs: list[int], names: list[str], forgotten: set[str],
                        shift: float) -> None:
        marks = [x + shift for x, n in zip(xs, names, strict=True) if n in forgotten]
        if marks:
            item = pg.ScatterPlotItem(x=marks, y=[0.03] * len(marks), symbol="x", size=12,
                                      pen=pg.mkPen(FORGOTTEN, width=2), brush=FORGOTTEN)
            self.getPlotItem().addItem(item)
            self.legend.addItem(item, "forgotten")


def _short(name: str, limit: int = 10) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
