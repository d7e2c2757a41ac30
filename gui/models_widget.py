"""The Models screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class ModelsWidget(PlaceholderScreen):
    title = "Models"
    description = ("Registered models with their versions and classes: evaluate a model, forget "
                   "classes, learn new ones.")
