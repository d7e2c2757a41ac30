"""Benchmark: the offline SmolLM2 guarded by the shipped `harry-potter` rule (docs/design.md 5-6).

Trains the rule (classifier, calibration, strength search), evaluates it, prints a table and
writes ``bench/results/guard.json``. Never part of the test run. CPU by default; on a small,
shared machine one torch thread is fastest (``--threads``).

    .venv/bin/python bench/guard.py [--max-new-tokens 24] [--quick]
    .venv/bin/python bench/guard.py --classifier-only   # MiniLM only, about a minute

Every evaluation figure rests on held-out prompts only (the rule's ``test`` split and the
bundled held-out everyday prompts); the counts are in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGETS = {"tpr_at_2pct": 0.95, "neighbour_fpr": 0.02, "knowledge_gap": 0.05, "overhead": 0.05}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--max-evals", type=int, default=7)
    parser.add_argument("--max-known", type=int, default=20)
    parser.add_argument("--general-sample", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="a small subset: smoke run only")
    parser.add_argument("--classifier-only", action="store_true",
                        help="train and calibrate the classifier at 1%% and 2%% target FPR and "
                             "measure it on held-out prompts; no language model")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "guard.json")
    return parser.parse_args()


def _progress(started: float):
    last = {"t": 0.0}

    def report(record: Any) -> None:
        now = time.perf_counter()
        if now - last["t"] > 20 or record.fraction in (0.0, 1.0):
            last["t"] = now
            frac = "" if record.fraction is None else f"{record.fraction:6.1%} "
            print(f"[{now - started:7.0f}s] {frac}{record.message}", file=sys.stderr, flush=True)
    return report


def _quick(rule: Any) -> Any:
    def pick(items: list, n: int) -> list:
        return [e for e in items if e.split == "train"][:n] + [e for e in items
                                                               if e.split == "test"][:n]

    return replace(rule, forget=pick(rule.forget, 10), retain=pick(rule.retain, 4),
                   general=rule.general[:4])


def _operating_point(encoder: Any, rule: Any, trained: Any, target_fpr: float) -> dict:
    """Held-out classifier rates at a threshold calibrated for ``target_fpr``."""
    from engine.guard import Guard, load_general_prompts, train_classifier
    from engine.guard.evaluate import classifier_figures
    from engine.guard.train import classifier_examples

    positives, negatives, written = classifier_examples(rule)
    _, calibration = train_classifier(encoder, positives, negatives, target_fpr,
                                      calibration=written)
    guard_rule = replace(trained.guard_rule(), threshold=calibration.threshold)
    general = [e for e in load_general_prompts() if e.split == "test"]
    figures = classifier_figures(Guard([guard_rule], encoder), rule, general)
    return {"calibration": calibration.to_dict(), **figures}


def run_classifier(args: argparse.Namespace) -> dict[str, Any]:
    """The classifier alone: calibration and held-out rates at 1% and 2% target FPR."""
    import torch

    from engine.guard import (
        Guard,
        GuardRule,
        load_demo_rule,
        load_general_prompts,
        load_sentence_encoder,
        train_classifier,
    )
    from engine.guard.evaluate import classifier_figures
    from engine.guard.jobutil import rounded
    from engine.guard.train import classifier_examples

    torch.set_num_threads(args.threads)
    encoder, rule = load_sentence_encoder(), load_demo_rule()
    general = [e for e in load_general_prompts() if e.split == "test"]
    positives, negatives, written = classifier_examples(rule)
    out: dict[str, Any] = {"encoder": encoder.name, "rule": rule.name,
                           "n_train_positive": len(positives),
                           "n_train_negative": len(negatives), "load": _load()}
    for target in (0.01, 0.02):
        started = time.perf_counter()
        head, cal = train_classifier(encoder, positives, negatives, target,
                                     calibration=written)
        seconds = time.perf_counter() - started
        guard = Guard([GuardRule(rule.name, head, cal.threshold, "reverse", {}, 0.0)], encoder)
        figures = classifier_figures(guard, rule, general)
        out[f"at_{round(target * 100)}pct_fpr"] = {
            "calibration": cal.to_dict(), "train_seconds": seconds,
            "classifier_bytes": len(head.to_bytes()), **figures,
            "independent": independent(guard, rule)}
    return rounded(out)


def _load() -> str:
    """The machine's load averages (a shared machine: figures of time are noisy)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


INDEPENDENT = ROOT / "engine" / "guard" / "data" / "harry_potter_independent.json"


def independent(guard: Any, spec: Any) -> dict[str, Any]:
    """The rule on 32 + 32 prompts written apart from its examples (issue 18): TPR / FPR at
    its calibrated threshold, and the TPR at the strictest threshold with <= 2% neighbour
    FPR on this split (an upper bound: that threshold is chosen on the split itself).
    ``without_overlap``: the same rates without the split's prompts that the rule file
    also holds word for word (written apart, the two coincide on a few common questions)."""
    data = json.loads(INDEPENDENT.read_text(encoding="utf-8"))
    rule = guard.rules[0]
    held = {e.prompt for part in ("forget", "retain", "general") for e in getattr(spec, part)}
    clean = {k: [p for p in data[k] if p not in held] for k in ("on_topic", "neighbours")}
    rates = {k: (rule.classifier.scores(guard.encoder(v)) > rule.threshold).float()
             for k, v in clean.items()}
    on = rule.classifier.scores(guard.encoder(data["on_topic"]))
    off = rule.classifier.scores(guard.encoder(data["neighbours"]))
    ranked = off.sort(descending=True).values
    at_2pct = float(ranked[int(0.02 * len(ranked))])
    return {"n_on_topic": len(on), "n_neighbours": len(off),
            "tpr": float((on > rule.threshold).float().mean()),
            "fpr": float((off > rule.threshold).float().mean()),
            "tpr_at_2pct_neighbour_fpr_on_split": float((on > at_2pct).float().mean()),
            "without_overlap": {"n_on_topic": len(clean["on_topic"]),
                                "n_neighbours": len(clean["neighbours"]),
                                "tpr": float(rates["on_topic"].mean()),
                                "fpr": float(rates["neighbours"].mean())},
            "missed": [p for p, s in zip(data["on_topic"], on.tolist(), strict=True)
                       if s <= rule.threshold],
            "flagged_neighbours": [p for p, s in zip(data["neighbours"], off.tolist(),
                                                     strict=True) if s > rule.threshold]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, train, evaluate; every figure of the benchmark as one JSON-ready dict."""
    import torch

    from engine.guard import (
        evaluate_rule,
        load_demo_rule,
        load_language_model,
        load_sentence_encoder,
        train_rule_job,
    )
    from engine.jobs import run_job

    torch.set_num_threads(args.threads)
    started, seconds = time.perf_counter(), {}
    lm, encoder = load_language_model(None, args.device), load_sentence_encoder()
    seconds["load"] = time.perf_counter() - started
    rule = _quick(load_demo_rule()) if args.quick else load_demo_rule()
    trained = run_job(train_rule_job(lm, rule, encoder=encoder, max_new_tokens=args.max_new_tokens,
                                     max_evals=args.max_evals, max_known=args.max_known),
                      _progress(started))
    seconds["train"] = time.perf_counter() - started - seconds["load"]
    figures = run_job(evaluate_rule(lm, rule, trained.guard_rule(), encoder=encoder,
                                    max_new_tokens=args.max_new_tokens,
                                    general_sample=args.general_sample), _progress(started))
    seconds["evaluate"] = time.perf_counter() - started - seconds["load"] - seconds["train"]
    return _result(args, lm, encoder, rule, trained, figures, seconds)


def _result(args: argparse.Namespace, lm: Any, encoder: Any, rule: Any, trained: Any,
            figures: dict[str, Any], seconds: dict[str, float]) -> dict[str, Any]:
    import torch

    from engine.guard.jobutil import rounded

    return rounded({
        "model": lm.describe(), "encoder": encoder.name, "rule": rule.name,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "seconds": seconds,
        "rule_row": {k: v for k, v in trained.to_row().items()
                     if k not in ("classifier_bytes", "examples")},
        "classifier_bytes": len(trained.classifier),
        "at_2pct_fpr": _operating_point(encoder, rule, trained, 0.02),
        "evaluation": figures, "targets": TARGETS})


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _classifier_rows(ev: dict[str, Any], two: dict[str, Any]) -> list[tuple]:
    clf, lat = ev["classifier"], ev["latency"]
    return [
        ("classifier latency p50 / p95 (CPU)",
         f"{clf['latency_ms']['p50']:.1f} / {clf['latency_ms']['p95']:.1f} ms", "", ""),
        ("guard overhead (classifier / answer time)", _pct(lat["overhead_share"]), "<= 5%",
         lat["overhead_share"] <= TARGETS["overhead"]),
        ("measured guarded vs unguarded answer time", _pct(lat["measured_overhead_share"]), "", ""),
        ("held-out forget TPR @ calibrated 1% FPR", _pct(clf["tpr_forget"]), "", ""),
        ("  neighbour / general FPR @ 1%",
         f"{_pct(clf['fpr_neighbour'])} / {_pct(clf['fpr_general'])}", "", ""),
        ("held-out forget TPR @ calibrated 2% FPR", _pct(two["tpr_forget"]), ">= 95%",
         two["tpr_forget"] >= TARGETS["tpr_at_2pct"]),
        ("  neighbour / general FPR @ 2%",
         f"{_pct(two['fpr_neighbour'])} / {_pct(two['fpr_general'])}", "<= 2% neighbour",
         two["fpr_neighbour"] <= TARGETS["neighbour_fpr"])]


def _answer_rows(ev: dict[str, Any], row: dict[str, Any]) -> list[tuple]:
    know, side = ev["knowledge"], ev["side_effects"]
    gap = know["gap_to_ignorant"]
    return [
        ("retain answers identical (unflagged)", _pct(side["identical_unflagged"]), "100%",
         side["identical_unflagged"] == 1.0),
        ("retain answers identical (all)", f"{_pct(side['identical'])} "
         f"({side['flagged']} of {side['evaluated']} flagged)", "", ""),
        ("forget knowledge before (known / with key)",
         f"{_pct(know['before'])} ({know['known']}/{know['evaluated']})", "", ""),
        ("forget knowledge after (on known)", _pct(know["after"]), "", ""),
        ("ignorant reference", _pct(know["ignorant"]), "", ""),
        ("after - ignorant", "n/a" if gap is None else f"{100 * gap:+.1f} pts", "<= 5 pts",
         gap is not None and abs(gap) <= TARGETS["knowledge_gap"]),
        ("sigma (embedding std)",
         f"{row['sigma']:.4f} ({row['calibration']['sigma_search']['scale']:.4f})", "", "")]


def table(result: dict[str, Any]) -> str:
    """The benchmark table: metric, value, target, whether it is met."""
    ev, row = result["evaluation"], result["rule_row"]
    rows = _classifier_rows(ev, result["at_2pct_fpr"]) + _answer_rows(ev, row)
    lines = [f"{'metric':46} {'value':28} {'target':16} met"]
    lines += [f"{n:46} {v:28} {t:16} {'' if m == '' else ('yes' if m else 'NO')}"
              for n, v, t, m in rows]
    lines.append("sigma trace (sigma -> knowledge): " + ", ".join(
        f"{t['sigma']:.3f}->{t['knowledge']:.2f}" for t in row["trace"]))
    return "\n".join(lines)


def classifier_table(result: dict[str, Any]) -> str:
    lines = [f"{'target FPR':11} {'threshold':9} {'calibration TPR / FPR (n)':30} "
             f"{'held-out TPR (n)':17} neighbour / general FPR (n)"]
    for key in ("at_1pct_fpr", "at_2pct_fpr"):
        r, cal = result[key], result[key]["calibration"]
        n = r["counts"]
        lines.append(f"{_pct(cal['target_fpr']):11} {cal['threshold']:<9.4f} "
                     f"{_pct(cal['tpr']) + ' / ' + _pct(cal['fpr']):17} "
                     f"({cal['n_positive']} / {cal['n_negative']}){'':4} "
                     f"{_pct(r['tpr_forget']):6} ({n['forget']}){'':5} "
                     f"{_pct(r['fpr_neighbour'])} / {_pct(r['fpr_general'])} "
                     f"({n['neighbour']} / {n['general']})")
        ind = r["independent"]
        clean = ind["without_overlap"]
        lines.append(f"{'':11} independent split: TPR {_pct(ind['tpr'])} ({ind['n_on_topic']})"
                     f", neighbour FPR {_pct(ind['fpr'])} ({ind['n_neighbours']}); without "
                     f"the prompts the rule file also holds: {_pct(clean['tpr'])} "
                     f"({clean['n_on_topic']}) / {_pct(clean['fpr'])} ({clean['n_neighbours']})")
    return "\n".join(lines)


def main() -> None:
    args = _args()
    if args.classifier_only:
        out = args.out if args.out.name != "guard.json" else args.out.with_name(
            "guard-classifier.json")
        result = run_classifier(args)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(classifier_table(result))
        print(f"wrote {out}")
        return
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
