"""`full` mode: training cost of the two-pass objective's variants against their accuracy
and forgetting (issue 20, docs/design.md sections 4.2 and 16).

A variant runs the wrong-subset pass on a share of each batch's rows (``wrong_rows``;
1.0 is the paper's objective). For each variant: training FLOPs per image relative to a
plain timm ViT (one step at 224 px, 100 classes, batch 64, counted on the meta device),
and on real data, per seed, test accuracy and forget behaviour: every class forgotten in
turn (its prompt and head row deleted, as a forget does) gives the retained classes'
accuracy and the forgotten class's own (0 by construction: its column is gone), and the
normalised entropy of the forgotten class's test images over the classes that remain
(1.0 = uniform, "no knowledge", what the wrong pass teaches); a few 5-class forgets give
the retained accuracy after a larger forget.

Criterion, fixed before the numbers were seen: a variant keeps the method when, on each
dataset, its median (over seeds) test accuracy, retained accuracy after 1- and 5-class
forgets and forgotten-class entropy are each no worse than the paper objective's median
by more than that objective's own spread over seeds (max - min), with a floor of 0.5
points for accuracies and 0.02 for the entropy. Among the variants that keep it and cost
at most 2.0x, the one with the largest share (the least change of the method) is chosen.

Prints a table and writes bench/results/full-cost.json (each dataset's entry names the
machine and its load). Not part of the test run; about 1-2 minutes per run on 2 cores:
    python bench/full_cost.py [--datasets digits,fashion-mnist] [--seed-list 0,1,2]
Parallel runs (e.g. one per seed, --flops-models '') may share one --out file.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import functools
import itertools
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.datasets import ImageDataset, load_dataset  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.objective import two_pass_loss  # noqa: E402
from engine.training import TrainConfig, evaluate, predict_logits, train_job  # noqa: E402

CANDIDATES = {"paper": 1.0, "wrong-0.5": 0.5, "wrong-0.4": 0.4, "wrong-0.25": 0.25}
# digits: the embedded default as it is; Fashion-MNIST: its defaults on 300 images per
# class (all 10,000 test images), so a run takes minutes on two cores.
DATASETS = {"digits": {}, "fashion-mnist": {"max_per_class": 300}}
METRICS = ("test_accuracy", "retained_after_1", "retained_after_5", "forgotten_entropy")
# The least a variant may fall short of the paper objective's median by, whatever its
# spread: half a point of accuracy, 0.02 of normalised entropy.
FLOORS = {"test_accuracy": 0.005, "retained_after_1": 0.005, "retained_after_5": 0.005,
          "forgotten_entropy": 0.02}


def flop_costs(shares: dict[str, float], model: str) -> dict[str, float]:
    """Training FLOPs per image of `full` mode per variant, relative to a plain ViT."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench import scale
    from engine.pfm import PreForgettableViT

    args = argparse.Namespace(classes=100, img_size=224, batch=64, depth=None)
    meta = torch.device("meta")
    x, y = scale._batch(args, torch.Generator().manual_seed(0))

    def gflops(step) -> float:
        with FlopCounterMode(display=False) as counter:
            step(x.to(meta), y)
        return counter.get_total_flops() / 1e9

    plain = gflops(scale.plain_step(model, args, meta))
    return {name: gflops(scale.pfm_step(model, "full", args, meta, (
        PreForgettableViT, functools.partial(two_pass_loss, wrong_rows=share)))) / plain
        for name, share in shares.items()}


def forget_behaviour(model, data: ImageDataset, combos: int, seed: int) -> dict:
    """Retained accuracy and the forgotten images' entropy after deleting classes."""
    retained, entropy = [], []
    for cid in data.class_ids:
        per_class, forgotten = _forget(model, data, [cid])
        retained.append(statistics.mean(per_class[c] for c in per_class if c != cid))
        probs = predict_logits(forgotten, data.test_x[data.test_y == cid]).softmax(-1)
        h = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean().item()
        entropy.append(h / math.log(len(data.class_ids) - 1))
    every = list(itertools.combinations(data.class_ids, 5))
    picked = random.Random(seed).sample(every, min(combos, len(every)))
    after_5 = []
    for chosen in picked:
        per_class, _ = _forget(model, data, list(chosen))
        after_5.append(statistics.mean(v for c, v in per_class.items() if c not in chosen))
    return {"retained_after_1": statistics.mean(retained),
            "forgotten_accuracy": 0.0,  # the class's head row is gone: never predicted
            "forgotten_entropy": statistics.mean(entropy),
            "retained_after_5": statistics.mean(after_5)}


def _forget(model, data: ImageDataset, classes: list[int]):
    forgotten = copy.deepcopy(model)
    forgotten.remove_classes(classes)
    per_class, _ = evaluate(forgotten, data.test_x, data.test_y)
    return per_class, forgotten


def one_run(dataset: str, share: float, seed: int, data: ImageDataset,
            combos: int) -> dict:
    cfg = TrainConfig.for_dataset(dataset, seed=seed, wrong_rows=share,
                                  **DATASETS[dataset])
    start = time.perf_counter()
    result = run_job(train_job(cfg, dataset=data))
    seconds = time.perf_counter() - start
    return {"seed": seed, "test_accuracy": result.test_accuracy, "train_seconds": seconds,
            **forget_behaviour(result.model, data, combos, seed)}


def run_dataset(dataset: str, args: argparse.Namespace, out: Path) -> None:
    """Every chosen variant on every chosen seed; each run is saved as it ends."""
    names = args.candidates.split(",")
    for seed in map(int, args.seed_list.split(",")):
        cfg = TrainConfig.for_dataset(dataset, seed=seed, **DATASETS[dataset])
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.classes, cfg.img_size, seed,
                            cfg.max_per_class)
        for name in names:  # variants interleaved, so the load falls on all alike
            run = {**one_run(dataset, CANDIDATES[name], seed, data, args.combos),
                   "load_average": os.getloadavg()}
            print(dataset, name, json.dumps(run), flush=True)
            with locked(out) as report:
                entry = report.setdefault("datasets", {}).setdefault(
                    dataset, {"machine": machine(args), "options": DATASETS[dataset],
                              "runs": {}})
                entry["runs"].setdefault(name, []).append(run)
                entry["medians"] = medians(entry["runs"])


def medians(runs: dict[str, list[dict]]) -> dict:
    return {name: {m: statistics.median(r[m] for r in rs) for m in METRICS + (
        "train_seconds",)} | {f"{m}_spread": max(r[m] for r in rs) - min(r[m] for r in rs)
                              for m in METRICS} | {"seeds": len(rs)}
        for name, rs in runs.items() if rs}


def machine(args: argparse.Namespace) -> dict:
    return {"name": platform.node(), "cpus": os.cpu_count(), "threads": args.threads,
            "torch": torch.__version__, "load_average_at_start": os.getloadavg()}


@contextlib.contextmanager
def locked(out: Path):
    """The report, read and written back under a lock: parallel runs share the file."""
    with open(Path(tempfile.gettempdir()) / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(out.read_text()) if out.exists() else {}
        report["candidates"] = CANDIDATES
        yield report
        out.write_text(json.dumps(report, indent=1) + "\n")


def keeps_method(entry: dict, name: str) -> bool:
    """The criterion of the module docstring, on one dataset's medians."""
    paper, variant = entry["medians"]["paper"], entry["medians"][name]
    return all(variant[m] >= paper[m] - max(paper[f"{m}_spread"], FLOORS[m])
               for m in METRICS)


def print_table(report: dict) -> None:
    costs = report.get("flops_vs_plain", {})
    for dataset, entry in report.get("datasets", {}).items():
        load = entry["machine"]["load_average_at_start"][0]
        print(f"{dataset} (medians over seeds; load {load:.1f} at start)")
        print(f"{'variant':>11} {'ViT-S':>6} {'ViT-B':>6} {'test':>7} {'ret@1':>7} "
              f"{'ret@5':>7} {'H forg':>7} {'train s':>8} {'seeds':>5} keeps")
        for name, m in entry["medians"].items():
            cost = costs.get(name, {})
            keeps = keeps_method(entry, name) if "paper" in entry["medians"] else "-"
            print(f"{name:>11} {cost.get('vit_small_patch16_224', 0):>6.2f} "
                  f"{cost.get('vit_base_patch16_224', 0):>6.2f} {m['test_accuracy']:>7.4f} "
                  f"{m['retained_after_1']:>7.4f} {m['retained_after_5']:>7.4f} "
                  f"{m['forgotten_entropy']:>7.3f} {m['train_seconds']:>8.1f} "
                  f"{m['seeds']:>5} {keeps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed-list", default="0,1,2")
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--combos", type=int, default=5, help="5-class forgets per run")
    parser.add_argument("--flops-models", default="vit_small_patch16_224,vit_base_patch16_224",
                        help="models whose FLOPs to count ('' for none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "full-cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.flops_models:
        costs = {name: {} for name in CANDIDATES}
        for model in args.flops_models.split(","):
            for name, cost in flop_costs(CANDIDATES, model).items():
                costs[name][model] = cost
        with locked(out) as report:
            report["flops_vs_plain"] = costs
    for dataset in filter(None, args.datasets.split(",")):
        run_dataset(dataset, args, out)
    print_table(json.loads(out.read_text()))


if __name__ == "__main__":
    main()
