"""The Audits screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class AuditsWidget(PlaceholderScreen):
    title = "Audits"
    description = ("Membership-inference audits against the retrain reference: scorecard, MIA "
                   "efficacy, ROC curves and the relearn attack.")
