"""Data at real sizes: float32 in memory (before), uint8 in memory, uint8 streamed from the
on-disk cache (docs/design.md section 16).

Builds an image folder of Fashion-MNIST PNGs (RGB, ``--per-class`` images of each of the
10 classes), loads it at ``--img-size`` (224) each way in a fresh process, and reports
the load time (a cold streamed load decodes into the cache, a warm one reuses it), the
memory the images take (anonymous resident memory: file pages of the cache are the
kernel's to drop), peak resident memory, the data path's rate (shuffled float batches
delivered, no model) and a short training run's rate (a small ViT at the full size, the
pre-forgettable objective). Not part of the test run:
    python bench/stream.py [--per-class 300] [--img-size 224] [--device cpu]
Writes bench/results/stream-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("float32-memory", "uint8-memory", "stream-cold", "stream-warm", "stream-warm-1-worker")
SMALL_VIT = {"embed_dim": 192, "depth": 2, "num_heads": 3, "mlp_ratio": 4.0}


def write_folder(root: Path, per_class: int) -> Path:
    """Fashion-MNIST training images as RGB PNGs, one sub-folder per class."""
    import numpy as np
    from PIL import Image

    from engine.dataset_files import read_idx_folder
    from engine.datasets import FASHION_MNIST_DIR, FASHION_MNIST_NAMES

    raw = read_idx_folder(FASHION_MNIST_DIR, FASHION_MNIST_NAMES)
    for label, name in enumerate(FASHION_MNIST_NAMES):
        folder = root / name.replace("/", "-")
        folder.mkdir(parents=True)
        for i, row in enumerate(np.flatnonzero(raw.train_labels == label)[:per_class]):
            grey = raw.train_images[row]
            Image.fromarray(np.stack([grey, 255 - grey, grey // 2], -1)).save(
                folder / f"{i:05d}.png")
    return root


def _status(field: str) -> float:
    """A ``/proc/self/status`` memory field in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(mode: str, folder: str, cache: str, img_size: int, device: str,
            steps: int, batch: int) -> dict:
    """One mode, in this (fresh) process."""
    import torch

    from engine.datasets import load_dataset
    from engine.images import Images

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    anon_before = _status("RssAnon")
    start = time.perf_counter()
    data = load_dataset("imagefolder", data_dir=folder, img_size=img_size,
                        stream=mode.startswith("stream"), cache_dir=cache,
                        workers=1 if mode.endswith("1-worker") else None)
    if mode == "float32-memory":  # the path before: whole normalised float tensors
        data.train_x, data.test_x = Images(data.train_x.float()), Images(data.test_x.float())
    load_s = time.perf_counter() - start
    anon = _status("RssAnon") - anon_before
    rate = data_rate(data.train_x, batch, device)
    train = train_rate(data, device, steps, batch)
    return {"mode": mode, "images": len(data.train_x) + len(data.test_x),
            "load_s": round(load_s, 2), "images_anon_mib": round(anon, 1),
            "peak_rss_mib": round(_status("VmHWM"), 1),
            "stored_mib": round((data.train_x.nbytes + data.test_x.nbytes) / 2**20, 1),
            "workers": data.train_x.workers, "data_images_per_s": round(rate, 1),
            "train_images_per_s": round(train, 2)}


def data_rate(images, batch: int, device: str) -> float:
    """Shuffled float batches delivered on ``device`` per second (one epoch, no model)."""
    import torch

    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    start, seen = time.perf_counter(), 0
    for xb in images.batches(order.split(batch), torch.device(device)):
        seen += len(xb)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def train_rate(data, device: str, steps: int, batch: int) -> float:
    """Images/s of ``steps`` steps of the two-pass objective on a small ViT at full size."""
    import torch

    from engine.jobs import run_job
    from engine.training import TrainConfig, train_job

    rows = torch.arange(min(len(data.train_x), steps * batch))
    part = type(data)(**{**data.__dict__, "train_x": data.train_x[rows],
                         "train_y": data.train_y[rows], "test_x": data.test_x[:0],
                         "test_y": data.test_y[:0]})
    cfg = TrainConfig.for_dataset("imagefolder", img_size=data.img_size, patch_size=16,
                                  overrides=SMALL_VIT, epochs=1, batch_size=batch,
                                  device=device, warmup=0.0)
    records = []
    run_job(train_job(cfg, dataset=part), records.append)
    return len(rows) / records[-1].data["elapsed_s"]  # the steps, not building the model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "FOLDER", "CACHE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.img_size, args.device, args.steps,
                                 args.batch)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = write_folder(Path(tmp) / "photos", args.per_class), Path(tmp) / "cache"
        runs = []
        for mode in args.modes.split(","):
            if mode == "stream-cold":
                shutil.rmtree(cache, ignore_errors=True)
            out = subprocess.run([sys.executable, __file__, "--one", mode, str(folder),
                                  str(cache), "--img-size", str(args.img_size), "--device",
                                  args.device, "--steps", str(args.steps), "--batch",
                                  str(args.batch)], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    report(args, runs)


def report(args: argparse.Namespace, runs: list[dict]) -> None:
    from engine.device import device_description

    load = os.getloadavg()
    machine = {"host": platform.node(), "cpus": os.cpu_count(), "device": args.device,
               "device_name": device_description(args.device),
               "load_average_1_5_15": [round(v, 2) for v in load]}
    result = {"settings": {"per_class": args.per_class, "img_size": args.img_size,
                           "steps": args.steps, "batch": args.batch, "model": SMALL_VIT},
              "machine": machine, "runs": runs}
    name = "gpu" if args.device.startswith("cuda") else "vm-cpu"
    out = Path(args.out or ROOT / "bench" / "results" / f"stream-{name}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out} (load {load[0]:.1f})")


if __name__ == "__main__":
    main()
