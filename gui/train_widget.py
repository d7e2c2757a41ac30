"""The Train screen (its content arrives with a later issue)."""

from __future__ import annotations

from gui.screen import PlaceholderScreen


class TrainWidget(PlaceholderScreen):
    title = "Train"
    description = ("Train pre-forgettable image models and pretrain backbones, with live loss and "
                   "accuracy curves.")
