"""Pre-forgettable ViT on Fashion-MNIST: accuracy, forgetting, latency vs retraining.

Prints a table and writes bench/results/pfm.json. Not part of the test run.
    python bench/pfm.py [--per-class N] [--epochs E] [--combos 10] [--retrain-combos 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.forget import forget_job  # noqa: E402
from engine.image_jobs import train_model_job  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.training import TrainConfig, pretrain_job, train_job  # noqa: E402

CLASSES = list(range(10))


def options(args: argparse.Namespace) -> dict:
    return {"dataset": "fashion-mnist", "epochs": args.epochs, "max_per_class": args.per_class,
            "seed": args.seed, "mode": "full"}


def plain_vit(args: argparse.Namespace) -> dict:
    result = run_job(pretrain_job(TrainConfig.for_dataset(**options(args))))
    return {"test_accuracy": result.test_accuracy, "seconds": result.seconds}


def retrain_without(args: argparse.Namespace, forgotten: list[int]) -> dict:
    keep = [str(c) for c in CLASSES if c not in forgotten]
    cfg = TrainConfig.for_dataset(**{**options(args), "classes": keep})
    result = run_job(train_job(cfg))
    return {"retained_accuracy": result.test_accuracy, "seconds": result.seconds}


def forget_once(template: Path, forgotten: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(template, root)
        result = run_job(forget_job(root, model_name="fm", classes=[str(c) for c in forgotten],
                                    operator="bench"))
    return {"latency_ms": result["latency_ms"],
            "retained_before": _retained(result["accuracy_before"], forgotten),
            "retained_after": result["accuracy_after"]["retained"],
            "forgotten_after": max(result["accuracy_after"]["forgotten"].values()),
            "scan_clean": result["residual_scan"]["clean"]}


def _retained(report: dict, forgotten: list[int]) -> float:
    """Mean accuracy over the classes that stay (test sets are balanced)."""
    from engine.datasets import FASHION_MNIST_NAMES

    names = {FASHION_MNIST_NAMES[c] for c in forgotten}
    values = [v for k, v in report["per_class"].items() if k not in names]
    return sum(values) / len(values)


def combos(k: int, count: int, rng: random.Random) -> list[list[int]]:
    every = [list(c) for c in itertools.combinations(CLASSES, k)]
    return rng.sample(every, min(count, len(every)))


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    report: dict = {"config": vars(args), "plain_vit": plain_vit(args)}
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "ws"
        trained = run_job(train_model_job(template, name="fm", operator="bench", **options(args)))
        report["pfm"] = {"test_accuracy": trained["test_accuracy"], "seconds": trained["seconds"]}
        rng = random.Random(args.seed)
        report["forget"] = {str(k): forget_k(args, template, k, rng) for k in (1, 5, 9)}
    latencies = [r["latency_ms"] for k in report["forget"].values() for r in k["runs"]]
    retrain_s = [r["seconds"] for k in report["forget"].values() for r in k["retrained"]]
    report["latency"] = summary(latencies, retrain_s)
    return report


def forget_k(args: argparse.Namespace, template: Path, k: int, rng: random.Random) -> dict:
    chosen = combos(k, args.combos, rng)
    runs = [{"classes": c, **forget_once(template, c)} for c in chosen]
    retrained = [{"classes": c, **retrain_without(args, c)} for c in chosen[:args.retrain_combos]]
    return {"runs": runs, "retrained": retrained,
            "retained_before": statistics.mean(r["retained_before"] for r in runs),
            "retained_after": statistics.mean(r["retained_after"] for r in runs),
            "forgotten_after": max(r["forgotten_after"] for r in runs),
            "retrained_retained": statistics.mean(r["retained_accuracy"] for r in retrained)
            if retrained else None}


def summary(latencies: list[float], retrain_s: list[float]) -> dict:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    retrain_ms = statistics.median(retrain_s) * 1000 if retrain_s else None
    return {"p50_ms": statistics.median(ordered), "p95_ms": p95, "count": len(ordered),
            "retrain_median_ms": retrain_ms,
            "speedup_vs_retrain_at_p95": retrain_ms / p95 if retrain_ms else None}


def print_table(r: dict) -> None:
    print(f"plain ViT test accuracy        {r['plain_vit']['test_accuracy']:.4f}")
    print(f"pre-forgettable test accuracy  {r['pfm']['test_accuracy']:.4f}")
    print(f"{'k':>2} {'retained before':>16} {'after':>8} {'retrained':>10} {'forgotten':>10}")
    for k, f in r["forget"].items():
        rr = f"{f['retrained_retained']:.4f}" if f["retrained_retained"] is not None else "-"
        print(f"{k:>2} {f['retained_before']:>16.4f} {f['retained_after']:>8.4f} {rr:>10} "
              f"{f['forgotten_after']:>10.4f}")
    lat = r["latency"]
    print(f"forget latency p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms over "
          f"{lat['count']} forgets; retraining median {lat['retrain_median_ms'] / 1000:.0f} s; "
          f"speed-up at p95 {lat['speedup_vs_retrain_at_p95']:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=6000,
                        help="train images per class (6000 = all of Fashion-MNIST)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--combos", type=int, default=10)
    parser.add_argument("--retrain-combos", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pfm.json"))
    args = parser.parse_args()
    report = run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_table(report)


if __name__ == "__main__":
    main()
