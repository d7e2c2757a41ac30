"""Verdicts against noise: pass, fail or inconclusive per figure, class and audit.

docs/design.md section 15. The noise floor of a figure is the gap between two retrain
references trained alike with different seeds (``|reference - twin|``): no model can be
held closer to the reference than another retraining is. With the paired bootstrap
interval of ``gap = model - reference``:

- *pass*: the whole 95% interval lies within ``[-floor, floor]`` (within the spread of two
  retrainings);
- *fail*: the whole interval lies beyond the floor on one side (beyond it, by
  ``|gap| - floor``, with that interval shifted alike);
- *inconclusive*: the interval straddles the floor.

A figure omitted for too few samples, or measured without a second reference, gets no
verdict (``verdict`` None) and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.audit.evidence import Figure
from engine.audit.intervals import interval

VERDICTS = ("pass", "fail", "inconclusive")


def judge(model: Figure, reference: Figure, twin: Figure | None) -> dict[str, Any]:
    """The entry of one figure: values, intervals, gap, floor, verdict, samples."""
    entry: dict[str, Any] = {"samples": model.samples, "verdict": None}
    reason = model.omitted or reference.omitted
    if model.point is not None:
        entry["model"] = round(model.point, 4)
    if reference.point is not None:
        entry["reference"] = round(reference.point, 4)
    if reason:
        if model.point is not None and reference.point is not None:
            entry["gap"] = round(model.point - reference.point, 4)
        return {**entry, "reason": reason}
    gap = model.draws - reference.draws
    entry.update(model_ci=interval(model.draws), reference_ci=interval(reference.draws),
                 gap=round(model.point - reference.point, 4), gap_ci=interval(gap))
    if twin is None or twin.omitted or twin.point is None:
        why = twin.omitted if twin is not None and twin.omitted else "no second retrain " \
            "reference was measured, so the noise floor is unknown"
        return {**entry, "reason": why}
    floor = abs(reference.point - twin.point)
    entry.update(floor=round(floor, 4), floor_ci=interval(np.abs(reference.draws - twin.draws)))
    return {**entry, **_verdict(entry["gap"], entry["gap_ci"], floor)}


def _verdict(gap: float, ci: list[float], floor: float) -> dict[str, Any]:
    lo, hi = ci
    if -floor - 1e-12 <= lo and hi <= floor + 1e-12:
        return {"verdict": "pass"}
    if lo > floor or hi < -floor:
        sign = 1.0 if lo > floor else -1.0
        beyond = [round(sign * v - floor, 4) for v in (lo, hi)]
        return {"verdict": "fail", "beyond": round(abs(gap) - floor, 4),
                "beyond_ci": sorted(beyond)}
    return {"verdict": "inconclusive"}


def combine(verdicts: Iterable[str | None]) -> str | None:
    """fail if any fails, pass if every judged one passes, else inconclusive (None: none
    was judged)."""
    judged = [v for v in verdicts if v is not None]
    if not judged:
        return None
    if "fail" in judged:
        return "fail"
    return "pass" if all(v == "pass" for v in judged) else "inconclusive"


def statistics(model: Mapping[str, Figure], reference: Mapping[str, Figure],
               twin: Mapping[str, Figure] | None, *, resamples: int, level: float
               ) -> dict[str, Any]:
    """The audit's ``statistics`` object: every figure judged, per class and overall."""
    overall, per_class = {}, {}
    for key, fig in model.items():
        if key not in reference:
            continue
        entry = judge(fig, reference[key], (twin or {}).get(key))
        if key.startswith("class:"):
            _, name, figure = key.split(":", 2)
            per_class.setdefault(name, {"figures": {}})["figures"][figure] = entry
        else:
            overall[key] = entry
    for entry in per_class.values():
        entry.update(_summary(entry["figures"]))
    classes = {name: e["verdict"] for name, e in per_class.items()}
    return {"method": {"resamples": resamples, "level": level,
                       "floor": "two retrain references trained with different seeds"},
            "figures": overall, "per_class": per_class,
            "verdict": {**_summary(overall), "classes": _counts(classes.values())}}


def _summary(figures: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    verdicts = [e["verdict"] for e in figures.values()]
    samples = max((e["samples"] for e in figures.values()), default=0)
    return {"verdict": combine(verdicts), "counts": _counts(verdicts), "samples": samples}


def _counts(verdicts: Iterable[str | None]) -> dict[str, int]:
    found = list(verdicts)
    return {**{v: found.count(v) for v in VERDICTS}, "not_judged": found.count(None)}


def floor_of(stats: Mapping[str, Any]) -> dict[str, float]:
    """The reference-vs-reference gap of every overall figure (stored with the reference)."""
    return {k: e["floor"] for k, e in stats["figures"].items() if "floor" in e}
