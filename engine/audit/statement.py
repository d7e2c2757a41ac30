"""Plain-words erasure statements for forget results, audits and certificates (issue 9).

Every result names its erasure kind (``storage.erasure_kinds``, docs/design.md section
4.3): *exact* (retrain-equivalent), *isolated* (no shared weight learned from the class;
the other classes' own parameters did), *approximate* (shared weights learned from it
too), each with the measured residual against the retrain reference when an audit has
measured one.
"""

from __future__ import annotations

from typing import Any

from storage.erasure_kinds import EXACT, ISOLATED

_EXACT = {
    "independent": "independent mode: every parameter a class owns was trained from the "
                   "non-erasable backbone, that class's own images and non-erasable data only, "
                   "so the model is what training without the class gives",
}
_RETRAINED = ("the model was retrained without the forgotten classes from its non-erasable "
              "starting point")
_ISOLATED = {
    "isolated": "isolated mode: the backbone was pretrained on data declared non-erasable and "
                "stayed frozen, so no shared weight learned from the erasable classes; "
                "each class's prompt, head row and adapter belong to that class alone",
    "frozen": "frozen mode: the backbone never trained on erasable data, so no shared "
              "weight learned from the erasable classes; each class's prompt and head row "
              "belong to that class alone",
}
_NEGATIVES = ("The remaining classes' own parameters saw these classes' images as "
              "other-class examples during training, so the model is not the retrain "
              "reference; the class-level residual is measured, not zero by construction.")
_SHARED = {"lora": "the LoRA adapters", "full": "the backbone"}
_MEASURE = " `audit --relearn` measures the residual against the retrain reference."


def forget_statement(kind: str, mode: str, classes: list[str],
                     scrub: dict[str, Any] | None = None) -> str:
    """What a forget (optionally followed by a scrub) established, before any audit."""
    names = ", ".join(classes) or "the forgotten classes"
    if kind == EXACT:
        return (f"Exact erasure, retrain-equivalent ({_EXACT.get(mode, _RETRAINED)}). The "
                f"parameters of {names} were deleted and their bytes purged.")
    if kind == ISOLATED:
        return (f"Isolated erasure ({_ISOLATED.get(mode, mode + ' mode')}). The parameters "
                f"of {names} were deleted and their bytes purged. {_NEGATIVES}" + _MEASURE)
    shared = _SHARED.get(mode, "the shared weights")
    text = (f"Approximate erasure: the prompts, head rows and adapters of {names} were "
            f"deleted and purged, but {shared} ({mode} mode) also learned from them, so "
            "part of that knowledge can remain there.")
    if scrub:
        text += (f" A scrub fine-tuned {shared} on the retained classes only for "
                 f"{scrub['steps']} steps ({scrub['seconds']:.1f} s) and purged the "
                 "pre-scrub weights; this reduces, but does not remove, what is left.")
    return text + _MEASURE


def audit_statement(metrics: dict[str, Any], mode: str, scrubbed: bool = False) -> str:
    """The audit's erasure kind in words, with the residual it measured."""
    kind = metrics["erasure"]
    ref = metrics.get("reference")
    if kind == EXACT:
        head = f"Exact erasure, retrain-equivalent ({_EXACT.get(mode, _RETRAINED)})."
        tail = " The measured figures are a check, not the proof."
    elif kind == ISOLATED:
        head = (f"Isolated erasure ({_ISOLATED.get(mode, mode + ' mode')}); the other "
                "classes' own parameters learned from the forgotten classes as negatives.")
        tail = "" if ref else " No retrain reference was measured, so the residual is unknown."
    else:
        shared = _SHARED.get(mode, "the shared weights")
        head = (f"Approximate erasure: {shared} ({mode} mode) learned from the forgotten "
                "classes" + ("; the shared weights were scrubbed afterwards (fine-tuned on the "
                              "retained classes only)" if scrubbed else "") + ".")
        tail = "" if ref else " No retrain reference was measured, so the residual is unknown."
    return head + (" " + residual_text(metrics, ref) if ref else "") + tail


def mia_text(m: dict[str, Any], ref: dict[str, Any]) -> str:
    """The MIA-efficacy against the reference: the label-free top-1 figure, and SalUn's
    only where it is informative (not degenerate in either model)."""
    degenerate = m.get("mia_efficacy_degenerate") or ref.get("mia_efficacy_degenerate")
    top1 = m.get("mia_efficacy_top1"), ref.get("mia_efficacy_top1")
    parts = []
    if None not in top1:
        parts.append(f"MIA-efficacy (label-free, top-1 confidence and entropy) "
                     f"{top1[0]:.1%} vs {top1[1]:.1%}")
    if not degenerate:
        parts.append(f"MIA-efficacy (SalUn, true-label confidence) "
                     f"{m['mia_efficacy']:.1%} vs {ref['mia_efficacy']:.1%}")
    else:
        parts.append("SalUn's MIA-efficacy not quoted (every forgotten sample has the same "
                     "true-label confidence, so it calls the whole class one way)")
    return "; ".join(parts)


def residual_text(m: dict[str, Any], ref: dict[str, Any]) -> str:
    """Relearn gap, MIA-efficacy and distinguishability against the reference, in words."""
    parts = []
    if m.get("relearn") and ref.get("relearn"):
        gaps = ", ".join(f"n={n}: {m['relearn'][n]:.1%} vs {ref['relearn'][n]:.1%}"
                         for n in ("1", "5", "20") if n in m["relearn"])
        worst = max(m["relearn"][n] - ref["relearn"][n] for n in m["relearn"])
        parts.append(f"relearn accuracy {gaps} (worst gap {worst * 100:+.1f} points)")
    parts.append(mia_text(m, ref))
    parts.append(f"forget distinguishability AUC {m['forget_distinguishability_auc']:.3f} "
                 f"vs {ref['forget_distinguishability_auc']:.3f} (0.5 = indistinguishable)")
    return "Measured against the retrain reference: " + "; ".join(parts) + "."
