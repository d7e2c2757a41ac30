"""What every pyqtgraph chart of the application shares: a white, static plot and colours."""

from __future__ import annotations

import pyqtgraph as pg

MODEL, REFERENCE, BEFORE = "#1f5f99", "#d08c1f", "#a9b0b8"
FORGOTTEN, MEMBERS, NON_MEMBERS = "#c0392b", "#1f5f99", "#d08c1f"
TEXT = "#333333"


def static_plot(widget: pg.PlotWidget, min_height: int = 160) -> pg.PlotItem:
    """Turn off what a report chart does not need (menu, mouse zoom, the 'A' button)."""
    widget.setMenuEnabled(False)
    widget.setMouseEnabled(x=False, y=False)
    widget.hideButtons()
    widget.setMinimumHeight(min_height)
    return widget.getPlotItem()


def percent_ticks(plot: pg.PlotItem, axis: str = "left", steps: int = 4) -> None:
    """'0%', '25%', ... on a 0-1 axis."""
    plot.getAxis(axis).setTicks([[(v / steps, f"{round(v * 100 / steps)}%")
                                  for v in range(steps + 1)]])


def short_name(name: str, limit: int = 10) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
