"""Real model sizes: ViT-S/16 and ViT-B/16 at 224 px with 100 classes (random weights).

Training throughput (images/s) of a plain timm ViT and of the pre-forgettable one in
each mode, forget latency p50/p95 (steps 1-4 of a forget: commit, purge of the class's
own artifacts, residual scan; the shared backbone is never rewritten), the time to learn
a class, and peak memory. Writes bench/results/scale-<machine>.json. Not part of the
test run; on a GPU machine the defaults finish in well under ten minutes:
    python bench/scale.py [--models vit_small_patch16_224,vit_base_patch16_224]
A reduced run for a small CPU machine:
    python bench/scale.py --train-models vit_small_patch16_224 --batch 4 --steps 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.device import autocast, device_description, resolve_device  # noqa: E402
from engine.objective import make_optimizer, two_pass_loss  # noqa: E402
from engine.pfm import MODES, PreForgettableViT  # noqa: E402

MODELS = "vit_small_patch16_224,vit_base_patch16_224"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_mb(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak so far


def _batch(args: argparse.Namespace, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(args.batch, 3, args.img_size, args.img_size, generator=gen) * 2 - 1
    return x, torch.randint(0, args.classes, (args.batch,), generator=gen)


def _timed(step, args: argparse.Namespace, dev: torch.device) -> dict:
    """Images/s over ``args.steps`` optimiser steps after ``args.warmup`` untimed ones."""
    gen = torch.Generator().manual_seed(0)
    batches = [_batch(args, gen) for _ in range(args.warmup + args.steps)]
    _reset_peak(dev)
    for x, y in batches[:args.warmup]:
        step(x.to(dev), y)
    _sync(dev)
    start = time.perf_counter()
    for x, y in batches[args.warmup:]:
        step(x.to(dev), y)
    _sync(dev)
    seconds = time.perf_counter() - start
    return {"images_per_s": args.batch * args.steps / seconds,
            "step_s": seconds / args.steps, "peak_mb": _peak_mb(dev)}


def _train_step(loss_fn, params, dev: torch.device):
    optimizer = make_optimizer(params, 1e-4, 0.05)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(dev):
            loss = loss_fn(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def plain_rate(name: str, args: argparse.Namespace, dev: torch.device) -> dict:
    import timm

    torch.manual_seed(0)
    net = timm.create_model(name, num_classes=args.classes, img_size=args.img_size)
    net = net.to(dev).train()
    params = [(f"backbone.{n}", p) for n, p in net.named_parameters()]
    step = _train_step(lambda x, y: F.cross_entropy(net(x).float(), y.to(dev)), params, dev)
    return _timed(step, args, dev)


def pfm_model(name: str, mode: str, args: argparse.Namespace) -> PreForgettableViT:
    torch.manual_seed(0)
    return PreForgettableViT(range(args.classes), backbone=name, img_size=args.img_size,
                             mode=mode)


def pfm_rate(name: str, mode: str, args: argparse.Namespace, dev: torch.device) -> dict:
    model = pfm_model(name, mode, args).to(dev).train()
    gen = torch.Generator().manual_seed(0)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    step = _train_step(lambda x, y: two_pass_loss(model, x, model.columns(y), gen)[0],
                       params, dev)
    return _timed(step, args, dev)


def learn_seconds(name: str, args: argparse.Namespace, dev: torch.device) -> dict:
    """Learn class ``classes`` on a full-mode model: ``learn_images`` new images, a retain
    set of ``learn_retain`` per known class, one epoch."""
    from engine.jobs import run_job
    from engine.training import learn_class_job

    model = pfm_model(name, "full", args)
    gen = torch.Generator().manual_seed(1)
    size = (3, args.img_size, args.img_size)
    images = torch.rand(args.learn_images, *size, generator=gen) * 2 - 1
    ry = torch.arange(args.classes).repeat(args.learn_retain)
    rx = torch.rand(len(ry), *size, generator=gen) * 2 - 1
    _reset_peak(dev)
    start = time.perf_counter()
    run_job(learn_class_job(model, args.classes, images, retain=(rx, ry), epochs=1,
                            batch_size=args.batch, retain_per_class=args.learn_retain,
                            device=str(dev)))
    return {"seconds": time.perf_counter() - start, "rows": len(ry) + args.learn_images,
            "peak_mb": _peak_mb(dev)}


def forget_latency(name: str, args: argparse.Namespace) -> dict:
    """Forget ``args.forgets`` classes one at a time from a registered model."""
    from engine.forget import _execute
    from engine.forget_plan import make_plan
    from engine.model_store import store_model
    from storage.versions import NewModel, register_model
    from storage.workspace import Workspace

    model = pfm_model(name, "isolated", args)
    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        try:
            shared, classes = store_model(ws, model)
            with ws.sessions.begin() as session:
                register_model(session, NewModel(
                    name="m", kind="image", backbone=name, mode="isolated",
                    dataset_ref={"dataset": "random"}, config={}, shared_artifact=shared,
                    class_artifacts=classes, class_names={c: f"c{c}" for c in classes},
                    metrics={}, erasure_kind="exact"), "bench")
            for cid in range(args.forgets):
                plan = make_plan(ws, "m", [f"c{cid}"], None)
                latencies.append(_execute(ws, {**plan, "accuracy_before": {}},
                                          "bench")["latency_ms"])
        finally:
            ws.close()
    ordered = sorted(latencies)
    return {"p50_ms": statistics.median(ordered), "count": len(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "backbone_mb": sum(p.numel() * p.element_size()
                               for p in model.backbone.parameters()) / 2**20}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    report = {"machine": {"name": platform.node(), "device": device_description(dev),
                          "cpu": platform.processor() or platform.machine(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__},
              "config": vars(args), "models": {}}
    for name in args.models.split(","):
        entry: dict = {}
        if name in args.train_models.split(","):
            entry["plain"] = plain_rate(name, args, dev)
            for mode in args.modes.split(","):
                entry[mode] = pfm_rate(name, mode, args, dev)
                entry[mode]["cost_vs_plain"] = (entry["plain"]["images_per_s"]
                                                / entry[mode]["images_per_s"])
            if args.learn_images:
                entry["learn"] = learn_seconds(name, args, dev)
        if args.forgets:
            entry["forget"] = forget_latency(name, args)
        report["models"][name] = entry
        print(name, json.dumps(entry, indent=1), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--train-models", default=MODELS, help="models to time training on")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--forgets", type=int, default=20)
    parser.add_argument("--learn-images", type=int, default=16)
    parser.add_argument("--learn-retain", type=int, default=2, help="retained images per class")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report = run(args)
    out = Path(args.out or ROOT / "bench" / "results" / f"scale-{platform.node()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
