"""The Reports screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class ReportsWidget(PlaceholderScreen):
    title = "Reports"
    description = ("Signed period reports: requests, deadlines, time to erasure, audit results and "
                   "certificates issued.")
