"""Loss and training accuracy while a model trains (from ``engine.objective.fit``'s Progress)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.chart_style import static_plot

LOSS, ACCURACY = "#c0392b", "#2f7fc1"


class TrainingChart(pg.PlotWidget):
    """One point per progress record: x in epochs, loss and accuracy (a fraction) on y."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        plot = static_plot(self, min_height=180)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("bottom", "epoch")
        plot.addLegend(offset=(-8, 6), labelTextColor="#333333",
                       brush=pg.mkBrush(255, 255, 255, 230))
        self.loss_curve = plot.plot([], [], pen=pg.mkPen(LOSS, width=2), name="loss")
        self.accuracy_curve = plot.plot([], [], pen=pg.mkPen(ACCURACY, width=2),
                                        name="training accuracy")
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

    @property
    def points(self) -> int:
        return len(self._x)

    def _redraw(self) -> None:
        self.loss_curve.setData(self._x, self._loss)
        self.accuracy_curve.setData(self._x, self._accuracy)
