"""The embedded default: `train --dataset digits` accuracy and wall time on this machine.

Target (issue 3): at least 95% test accuracy in at most 2 minutes on 2 CPU cores.
Runs the CLI's own job (registry, artifacts and all) once per seed; prints a table and
writes bench/results/digits.json. Not part of the test run.
    python bench/digits.py [--seeds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.image_jobs import train_model_job  # noqa: E402
from engine.jobs import run_job  # noqa: E402

TARGET_ACCURACY = 0.95
TARGET_SECONDS = 120.0


def train_once(seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_job(train_model_job(Path(tmp) / "ws", name="digits", operator="bench",
                                         dataset="digits", seed=seed))
        wall = time.perf_counter() - start
    return {"seed": seed, "test_accuracy": result["test_accuracy"], "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "digits.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    runs = [train_once(seed) for seed in range(args.seeds)]
    acc = statistics.median(r["test_accuracy"] for r in runs)
    wall = statistics.median(r["wall_seconds"] for r in runs)
    report = {"runs": runs, "median_test_accuracy": acc, "median_wall_seconds": wall,
              "targets": {"test_accuracy": TARGET_ACCURACY, "seconds": TARGET_SECONDS},
              "met": acc >= TARGET_ACCURACY and wall <= TARGET_SECONDS,
              "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads,
                          "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]}}
    print(f"{'seed':>4} {'test acc':>9} {'wall s':>7}")
    for r in runs:
        print(f"{r['seed']:>4} {r['test_accuracy']:>9.4f} {r['wall_seconds']:>7.1f}")
    print(f"median {acc:.4f} in {wall:.1f} s (target >= {TARGET_ACCURACY:.2f} "
          f"in <= {TARGET_SECONDS:.0f} s): {'met' if report['met'] else 'NOT met'}")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
