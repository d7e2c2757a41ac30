"""Loss and training accuracy while a model trains (from ``engine.objective.fit``'s Progress)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.chart_style import percent_ticks, static_plot

LOSS, ACCURACY = "#c0392b", "#2f7fc1"


class TrainingChart(pg.PlotWidget):
    """One point per progress record: x in epochs; loss on the left axis, training accuracy
    (0-100%) on the right one, so that neither scale squeezes the other."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        plot = static_plot(self, min_height=180)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("bottom", "epoch")
        plot.setLabel("left", "loss", color=LOSS)
        legend = plot.addLegend(offset=(-8, 6), labelTextColor="#333333",
                                brush=pg.mkBrush(255, 255, 255, 230))
        self.loss_curve = plot.plot([], [], pen=pg.mkPen(LOSS, width=2), name="loss")
        self.accuracy_view = pg.ViewBox(enableMouse=False)
        plot.showAxis("right")
        plot.scene().addItem(self.accuracy_view)
        right = plot.getAxis("right")
        right.linkToView(self.accuracy_view)
        right.setLabel("training accuracy", color=ACCURACY)
        percent_ticks(plot, "right")
        self.accuracy_view.setXLink(plot)
        self.accuracy_view.setYRange(0, 1.3, padding=0)  # the legend sits above 100%
        self.accuracy_curve = pg.PlotCurveItem(pen=pg.mkPen(ACCURACY, width=2))
        self.accuracy_view.addItem(self.accuracy_curve)
        legend.addItem(self.accuracy_curve, "training accuracy")
        plot.vb.sigResized.connect(self._on_view_sigResized)
        self._x: list[float] = []
        self._loss: list[float] = []
        self._accuracy: list[float] = []

    def clear_points(self) -> None:
        self._x, self._loss, self._accuracy = [], [], []
        self._redraw()

    def add_point(self, data: dict[str, Any]) -> None:
        """Add the figures of one ``Progress.data`` (ignored when it has no loss)."""
        if "loss" not in data or not data.get("steps"):
            return
        self._x.append(data["step"] / data["steps"] * data["epochs"])
        self._loss.append(data["loss"])
        self._accuracy.append(data["accuracy"])
        self._redraw()

    def _on_view_sigResized(self) -> None:  # noqa: N802 - keep both views on one rectangle
        main = self.getPlotItem().vb
        self.accuracy_view.setGeometry(main.sceneBoundingRect())
        self.accuracy_view.linkedViewChanged(main, self.accuracy_view.XAxis)

    @property
    def points(self) -> int:
        return len(self._x)

    def _redraw(self) -> None:
        self.loss_curve.setData(self._x, self._loss)
        self.accuracy_curve.setData(self._x, self._accuracy)
        if self._loss:  # loss from zero up, so that its fall reads true
            self.getPlotItem().setYRange(0, max(self._loss) * 1.05, padding=0)
