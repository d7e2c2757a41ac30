"""Real model sizes: ViT-S/16 and ViT-B/16 at 224 px with 100 classes (random weights).

Training throughput (images/s) of a plain timm ViT and of the pre-forgettable one in
each mode, forget latency p50/p95 (steps 1-4 of a forget: commit, purge of the class's
own artifacts, residual scan; the shared backbone is never rewritten, and its proof, made
when it was stored, spares the scan reading it: docs/design.md section 16), the time to learn
a class, and peak memory. Writes bench/results/scale-<machine>.json. Not part of the
test run; on a GPU machine the defaults finish in well under ten minutes:
    python bench/scale.py [--models vit_small_patch16_224,vit_base_patch16_224]
A reduced run for a small CPU machine:
    python bench/scale.py --train-models vit_small_patch16_224 --batch 4 --steps 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
from engine.training import default_wrong_rows  # noqa: E402

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


def interleaved_rates(steps: dict, args: argparse.Namespace, dev: torch.device) -> dict:
    """Images/s of each step function: warm-up, then ``args.steps`` rounds that time one
    step of each in turn, so a shared machine's changing load falls on all alike."""
    gen = torch.Generator().manual_seed(0)
    spent, peak = dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0.0)
    for round_ in range(args.warmup + args.steps):
        for name, step in steps.items():
            x, y = _batch(args, gen)
            x = x.to(dev)
            _reset_peak(dev)
            _sync(dev)
            start = time.perf_counter()
            step(x, y)
            _sync(dev)
            if round_ >= args.warmup:
                spent[name] += time.perf_counter() - start
            peak[name] = max(peak[name], _peak_mb(dev))
    return {name: {"images_per_s": args.batch * args.steps / spent[name],
                   "step_s": spent[name] / args.steps, "peak_mb": peak[name]}
            for name in steps}


def _train_step(loss_fn, params, dev: torch.device):
    optimizer = make_optimizer(params, 1e-4, 0.05)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(dev):
            loss = loss_fn(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def plain_step(name: str, args: argparse.Namespace, dev: torch.device):
    import timm

    torch.manual_seed(0)
    net = timm.create_model(name, num_classes=args.classes, img_size=args.img_size,
                            **_overrides(args))
    net = net.to(dev).train()
    params = [(f"backbone.{n}", p) for n, p in net.named_parameters()]
    return _train_step(lambda x, y: F.cross_entropy(net(x).float(), y.to(dev)), params, dev)


def _overrides(args: argparse.Namespace) -> dict:
    return {"depth": args.depth} if args.depth else {}


def pfm_model(name: str, mode: str, args: argparse.Namespace, cls=None) -> PreForgettableViT:
    torch.manual_seed(0)
    return (cls or PreForgettableViT)(range(args.classes), backbone=name,
                                      img_size=args.img_size, mode=mode,
                                      overrides=_overrides(args))


def pfm_step(name: str, mode: str, args: argparse.Namespace, dev: torch.device,
             code: tuple | None = None, device_labels: bool = False):
    """A training step of the two-pass objective as a new model of ``mode`` trains with
    it; ``code`` = (model class, loss) of another variant or checkout (``--compare-old``)."""
    cls, loss = code or (PreForgettableViT, functools.partial(
        two_pass_loss, wrong_rows=default_wrong_rows(mode)))
    model = pfm_model(name, mode, args, cls).to(dev).train()
    gen = torch.Generator().manual_seed(0)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    on = dev if device_labels else torch.device("cpu")  # the former objective wants them
    return _train_step(lambda x, y: loss(model, x, model.columns(y.to(on)), gen)[0],
                       params, dev)


def old_code(root: str) -> tuple:
    """PreForgettableViT and two_pass_loss of another checkout, imported under new names."""
    import importlib.util

    def load(name: str, path: str):
        spec = importlib.util.spec_from_file_location(name, Path(root) / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return (load("old_pfm", "engine/pfm.py").PreForgettableViT,
            load("old_objective", "engine/objective.py").two_pass_loss)


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
            start = time.perf_counter()
            shared, classes = store_model(ws, model)  # the proofs are made here, once
            stored = time.perf_counter() - start
            with ws.sessions.begin() as session:
                register_model(session, NewModel(
                    name="m", kind="image", backbone=name, mode="isolated",
                    dataset_ref={"dataset": "random"}, config={}, shared_artifact=shared,
                    class_artifacts=classes, class_names={c: f"c{c}" for c in classes},
                    metrics={}, erasure_kind="exact"), "bench")
            for cid in range(args.forgets):
                plan = make_plan(ws, "m", [f"c{cid}"], None)
                result = _execute(ws, {**plan, "accuracy_before": {}}, "bench")
                latencies.append(result["latency_ms"])
        finally:
            ws.close()
    ordered = sorted(latencies)
    scan = result["residual_scan"]
    return {"p50_ms": statistics.median(ordered), "count": len(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "store_and_prove_s": stored, "last_scan": {k: v for k, v in scan.items()
                                                        if k != "hits"},
            "backbone_mb": sum(p.numel() * p.element_size()
                               for p in model.backbone.parameters()) / 2**20}


def all_prompts_loss(model, x: torch.Tensor, cols: torch.Tensor, gen: torch.Generator):
    """The former cost model: both passes carry every prompt (absent ones were masked)."""
    from engine.objective import two_pass_terms

    n = len(x)
    return two_pass_terms(model(torch.cat([x, x])), cols.to(x.device), n)


def no_prompts_loss(model, x: torch.Tensor, cols: torch.Tensor, gen: torch.Generator):
    """The two passes with no prompt in any sequence: the objective's floor, so the gap
    to a mode's count is what its prompt tokens cost."""
    from engine.objective import two_pass_terms

    n = len(x)
    masks = torch.zeros(2 * n, len(model.class_ids), dtype=torch.bool)
    return two_pass_terms(model(torch.cat([x, x]), masks), cols.to(x.device), n)


def paper_loss(model, x: torch.Tensor, cols: torch.Tensor, gen: torch.Generator):
    """The paper's objective: the wrong pass on every row (``wrong_rows`` 1.0), which
    `full` mode trained with before docs/design.md section 4.2's share."""
    return two_pass_loss(model, x, cols, gen, wrong_rows=1.0)


def flop_counts(name: str, args: argparse.Namespace) -> dict:
    """GFLOPs per image of one training step (forward + backward), counted on the meta
    device: the work itself, whatever the machine's load."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = torch.device("meta")
    modes = args.modes.split(",")
    steps = {"plain": plain_step(name, args, meta)}
    steps.update({mode: pfm_step(name, mode, args, meta) for mode in modes})
    steps.update({f"paper-{mode}": pfm_step(name, mode, args, meta,
                                            (PreForgettableViT, paper_loss))
                  for mode in modes if default_wrong_rows(mode) < 1.0})
    steps.update({f"all-prompts-{mode}": pfm_step(name, mode, args, meta,
                                                  (PreForgettableViT, all_prompts_loss))
                  for mode in modes})
    steps.update({f"no-prompts-{mode}": pfm_step(name, mode, args, meta,
                                                 (PreForgettableViT, no_prompts_loss))
                  for mode in modes})
    x, y = _batch(args, torch.Generator().manual_seed(0))
    counts = {}
    for key, step in steps.items():
        with FlopCounterMode(display=False) as counter:
            step(x.to(meta), y)
        counts[key] = {"gflops_per_image": counter.get_total_flops() / 1e9 / args.batch}
    for count in counts.values():
        count["cost_vs_plain"] = count["gflops_per_image"] / counts["plain"]["gflops_per_image"]
    return counts


def training(name: str, args: argparse.Namespace, dev: torch.device) -> dict:
    modes = args.modes.split(",")
    steps = {"plain": plain_step(name, args, dev)}
    steps.update({mode: pfm_step(name, mode, args, dev) for mode in modes})
    steps.update({f"paper-{mode}": pfm_step(name, mode, args, dev,
                                            (PreForgettableViT, paper_loss))
                  for mode in modes if default_wrong_rows(mode) < 1.0})
    if args.compare_old:
        code = old_code(args.compare_old)
        steps.update({f"old-{mode}": pfm_step(name, mode, args, dev, code, True)
                      for mode in modes})
    rates = interleaved_rates(steps, args, dev)
    plain = rates["plain"]["images_per_s"]
    for rate in rates.values():
        rate["cost_vs_plain"] = plain / rate["images_per_s"]
    return rates


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    report = {"machine": {"name": platform.node(), "device": device_description(dev),
                          "cpu": platform.processor() or platform.machine(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "load_average_at_start": os.getloadavg()},
              "config": vars(args), "models": {}}
    for name in args.models.split(","):
        entry: dict = {}
        if name in args.train_models.split(","):
            entry.update(training(name, args, dev))
            if args.learn_images:
                entry["learn"] = learn_seconds(name, args, dev)
        if args.flops:
            entry["flops"] = flop_counts(name, args)
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
    parser.add_argument("--depth", type=int, default=None,
                        help="fewer blocks for a quick CPU run (ratios barely change)")
    parser.add_argument("--compare-old", default=None,
                        help="root of another checkout whose model and objective to time too")
    parser.add_argument("--flops", action="store_true",
                        help="also count each step's FLOPs (on the meta device, any machine)")
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
