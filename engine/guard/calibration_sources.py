"""What a forget rule's classifier was fit and calibrated on, told apart: the prompts the
rule's author wrote (and the bundled everyday prompts) and the variants the augmentation
generated from them (docs/design.md section 6.2).

A calibration split drawn from the same pool as the fit split holds augmented variants
whose written example (or whose other variants) the head trained on: its rates are
flattered, a weaker calibration than prompts written apart. ``split_sources`` records the
counts and which of the three kinds of calibration it was, for the certificate to say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WRITTEN_APART = "written apart"  # the rule's own calibration prompts, none augmented
SAME_EXAMPLES = "drawn from the examples and their augmented variants"
HELD_OUT_WRITTEN = "held out from the written examples"  # no augmentation at all

Rows = Sequence[Any]  # row indices (ints or 0-d tensors)


def split_sources(positives: Sequence[str], negatives: Sequence[str],
                  written: tuple[Sequence[str], Sequence[str]], fit: tuple[Rows, Rows],
                  calibration: tuple[Rows, Rows] | None = None,
                  apart: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """Written / augmented counts of the fit split and the calibration split, and how the
    calibration split was made. ``written``: the prompts among ``positives`` /
    ``negatives`` that were not generated; ``calibration`` None: the calibration prompts
    were written apart (``apart`` of each kind)."""
    own = (set(written[0]), set(written[1]))
    out: dict[str, Any] = {"fit_positive": _part(positives, fit[0], own[0]),
                           "fit_negative": _part(negatives, fit[1], own[1])}
    if calibration is None:
        out.update(positive={"written": apart[0], "augmented": 0},
                   negative={"written": apart[1], "augmented": 0}, calibration=WRITTEN_APART)
        return out
    out.update(positive=_part(positives, calibration[0], own[0]),
               negative=_part(negatives, calibration[1], own[1]))
    augmented = any(out[k]["augmented"] for k in ("fit_positive", "fit_negative", "positive",
                                                  "negative"))
    out["calibration"] = SAME_EXAMPLES if augmented else HELD_OUT_WRITTEN
    return out


def _part(prompts: Sequence[str], rows: Rows, own: set[str]) -> dict[str, int]:
    written = sum(1 for i in rows if prompts[int(i)] in own)
    return {"written": written, "augmented": len(rows) - written}
