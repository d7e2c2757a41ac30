"""The shape of an audit's metrics (docs/design.md section 5), checked before it is stored.

Rates are fractions in [0, 1]; ``gap_to_reference`` holds differences in [-1, 1];
``run_time_s`` is seconds (or None when unknown); ``lira.k`` counts shadow models;
``mia_efficacy_degenerate`` is the one boolean.
``check_metrics`` names every missing key and every figure out of range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from engine.audit.scores import ATTACKS
from storage.erasure_kinds import KINDS

RELEARN_KEYS = ("1", "5", "20")
SCORECARD = ("forget_accuracy", "retain_accuracy", "test_accuracy")
SUMMARY = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")
TOP = ("scorecard", "mia_efficacy", "mia_efficacy_degenerate", "mia_efficacy_top1",
       "threshold_attacks", "forget_distinguishability_auc", "linear_probe", "relearn",
       "erasure")
FLAGS = ("mia_efficacy_degenerate", "a_chosen")  # the only boolean leaves
COUNTS = ("samples", "members", "non_members", "resamples", "pass", "fail", "inconclusive",
          "not_judged")  # non-negative whole numbers (section 15)
SIGNED = ("gap_to_reference", "gap", "gap_ci", "beyond", "beyond_ci")  # differences: [-1, 1]


def check_metrics(metrics: dict[str, Any], *, reference: bool, lira: bool,
                  relearn: bool) -> list[str]:
    """Problems with ``metrics`` (empty when it is well formed)."""
    problems = _check_one(metrics, "", lira=lira, relearn=relearn)
    if reference:
        if "reference" not in metrics:
            problems.append("missing reference")
        else:
            problems += _check_one(metrics["reference"], "reference.", lira=lira,
                                   relearn=relearn)
            problems += _need(metrics["scorecard"], ["gap_to_reference"], "scorecard.")
    figures = {k: v for k, v in metrics.items() if k != "rederive"}  # not rates: section 17
    problems += [f"{p}: {v!r} out of range" for p, v in _out_of_range(figures, "")]
    return problems


def _check_one(m: dict[str, Any], at: str, *, lira: bool, relearn: bool) -> list[str]:
    problems = _need(m, [*TOP, *(["lira"] if lira else [])], at)
    if problems:
        return problems
    problems += _need(m["scorecard"], [*SCORECARD, "run_time_s"], f"{at}scorecard.")
    for attack in ATTACKS:
        entry = m["threshold_attacks"].get(attack)
        if entry is None:
            problems.append(f"missing {at}threshold_attacks.{attack}")
            continue
        problems += _need(entry, [*SUMMARY, "per_class"], f"{at}threshold_attacks.{attack}.")
    problems += _need(m["linear_probe"], ["forget_accuracy", "retain_accuracy", "per_class"],
                      f"{at}linear_probe.")
    if relearn:
        problems += _need(m["relearn"] or {}, RELEARN_KEYS, f"{at}relearn.")
    if lira:
        problems += _need(m["lira"], ["k", *SUMMARY, "forget_auc", "retain_auc"], f"{at}lira.")
    if m["erasure"] not in KINDS:
        problems.append(f"{at}erasure: {m['erasure']!r} is not one of {', '.join(KINDS)}")
    return problems


def _need(d: dict[str, Any], keys: Iterable[str], at: str) -> list[str]:
    return [f"missing {at}{k}" for k in keys if k not in d]


def _out_of_range(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every numeric leaf outside its allowed range."""
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in _out_of_range(v, f"{path}{k}.")]
    if isinstance(value, list):
        return [bad for i, v in enumerate(value) for bad in _out_of_range(v, f"{path}{i}.")]
    name = path.rstrip(".")
    if name.split(".")[-1] in FLAGS:
        return [] if isinstance(value, bool) else [(name, value)]
    if value is None or isinstance(value, str):
        ok = value is None and (name.endswith("run_time_s") or name.endswith("relearn")
                                or name.endswith("verdict")) or isinstance(value, str)
        return [] if ok else [(name, value)]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [(name, value)]
    if name.endswith(".k") or name == "k":
        return [] if isinstance(value, int) and value >= 2 else [(name, value)]
    if name.endswith("run_time_s"):
        return [] if value >= 0 else [(name, value)]
    parts = name.split(".")
    if parts[-1] in COUNTS:
        return [] if isinstance(value, int) and value >= 0 else [(name, value)]
    low = -1.0 if set(parts) & set(SIGNED) else 0.0
    return [] if low <= value <= 1.0 else [(name, value)]
