"""The Language-model guard screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class GuardWidget(PlaceholderScreen):
    title = "Language-model guard"
    description = ("Load the language model, manage forget rules, ask guarded prompts and evaluate "
                   "each rule.")
