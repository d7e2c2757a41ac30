"""`audit N [--reference] [--lira K] [--relearn]`: the image erasure audits (docs/design.md 5)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.context import Context, emit, run_with_progress, table
from cli.parsing import add_command


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    audit = add_command(commands, parent, "audit",
                        "run the membership-inference and residual-knowledge audits of an "
                        "image model's forgotten classes", cmd_audit)
    audit.add_argument("model", metavar="N")
    audit.add_argument("--reference", action="store_true",
                       help="compare with the retrain reference (trained once, then cached)")
    audit.add_argument("--lira", type=_shadow_count, default=0, metavar="K",
                       help="offline LiRA with K >= 2 shadow models (each is a training run)")
    audit.add_argument("--relearn", action="store_true",
                       help="relearn attack: a fresh prompt on 1, 5 and 20 samples per class")
    audit.add_argument("--seeds", type=_seed_count, default=None, metavar="S",
                       help="relearn seeds (default 5: the fewest for a useful interval; "
                            "an interval needs at least 3)")
    audit.add_argument("--no-twin", dest="twin", action="store_false",
                       help="skip the second retrain reference (then no verdict: the noise "
                            "floor is unknown)")
    audit.add_argument("--rederive", type=_class_count, nargs="?", const=0, default=None,
                       metavar="K", help="independent models: re-derive K (default: all) "
                       "remaining classes from their recorded seeds and data and compare bytes")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def _shadow_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError("LiRA needs at least 2 shadow models")
    return value


def _seed_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the relearn attack needs at least 1 seed")
    return value


def _class_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("re-derive at least 1 class (or omit K for all)")
    return value


def cmd_audit(ctx: Context) -> int:
    from engine.audit.job import audit_job

    a = ctx.args
    extra = {} if a.seeds is None else {"relearn_seeds": a.seeds}
    job = audit_job(ctx.workspace.root, a.model, reference=a.reference, lira=a.lira,
                    relearn=a.relearn, seed=a.seed, operator=ctx.operator, device=a.device,
                    twin=a.twin and a.reference, rederive=a.rederive, **extra)
    result = run_with_progress(ctx, job)
    emit(ctx, result, render)
    return _rederive_verdict(result, a.model)


def _rederive_verdict(r: dict[str, Any], model: str) -> int:
    """A re-derivation that does not reproduce the served bytes fails the command loudly
    (the audit is recorded, so the certificate cannot claim exact: design section 17)."""
    found = r.get("rederive")
    if not found or found["passed"]:
        return 0
    differing = found["differing"] + found["not_rederivable"]
    print(f"error: re-derivation FAILED for class(es) {', '.join(map(str, differing))} of "
          f"{model!r}: the served bytes are not what the recorded "
          f"recipe and data give (audit {r['audit_run']})", file=sys.stderr)
    return 1


def render(r: dict[str, Any]) -> str:
    """The figures as a table: this model, and the retrain reference where it was run."""
    ref = r.get("reference")
    rows = [[label, _fmt(value(r)), _fmt(value(ref)) if ref else "-"]
            for label, value in _ROWS if value(r) is not None or value(ref) is not None]
    head = (f"Audit {r['audit_run']}: {r['erasure']} erasure; "
            "rates are fractions of 1 (0.5 AUC = chance).")
    return head + "\n" + table(rows, ["figure", "model", "retrain reference"]) + _rederived(r)


def _rederived(r: dict[str, Any]) -> str:
    found = r.get("rederive")
    if not found:
        return ""
    env = found["environment"]
    return (f"\nRe-derived {len(found['classes'])} class(es): {len(found['identical'])} "
            f"byte-identical, differing: {found['differing'] or 'none'}, not re-derivable: "
            f"{found['not_rederivable'] or 'none'} (torch {env['torch']}, {env['threads']} "
            f"thread(s), {env['device']}; same environment as training: "
            f"{'yes' if found['same_environment'] else 'no'}).")


def _get(*path: str):  # noqa: ANN202 - a small accessor factory
    def read(metrics: dict[str, Any] | None) -> Any:
        value: Any = metrics
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value
    return read


_ROWS = [
    ("forget accuracy (train)", _get("scorecard", "forget_accuracy")),
    ("retain accuracy (train)", _get("scorecard", "retain_accuracy")),
    ("test accuracy (retained)", _get("scorecard", "test_accuracy")),
    ("run time (s)", _get("scorecard", "run_time_s")),
    ("MIA-efficacy (top-1, label-free)", _get("mia_efficacy_top1")),
    ("MIA-efficacy (SalUn)", _get("mia_efficacy")),
    ("SalUn MIA degenerate", _get("mia_efficacy_degenerate")),
    ("forget distinguishability AUC", _get("forget_distinguishability_auc")),
    *[(f"{a} attack AUC", _get("threshold_attacks", a, "auc"))
      for a in ("loss", "confidence", "entropy")],
    ("loss attack TPR @ 1% FPR", _get("threshold_attacks", "loss", "tpr_at_1pct_fpr")),
    ("linear probe, forgotten classes", _get("linear_probe", "forget_accuracy")),
    *[(f"relearn, {n} shot(s)", _get("relearn", n)) for n in ("1", "5", "20")],
    ("LiRA AUC", _get("lira", "auc")),
    ("LiRA TPR @ 0.1% FPR", _get("lira", "tpr_at_0_1pct_fpr")),
    ("RMIA AUC", _get("rmia", "auc")),
    ("RMIA TPR @ 1% FPR", _get("rmia", "tpr_at_1pct_fpr")),
    ("RMIA TPR @ 0.1% FPR", _get("rmia", "tpr_at_0_1pct_fpr")),
    ("verdict (against two retrainings)", _get("statistics", "verdict", "verdict")),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
