"""Erasure audits on Fashion-MNIST: original vs forgotten vs retrain reference, per mode.

    python bench/audit.py [--per-class N] [--epochs E] [--modes frozen lora full]
                          [--forget 7 9 5] [--lira K] [--relearn-seeds S] [--threads T]
                          [--dataset fashion-mnist|digits] [--default-digits]

Isolation protocol (docs/design.md section 5): a backbone is pretrained on classes 0-4
(declared non-erasable, ``pretrain``), then one pre-forgettable model per training mode
is trained on classes 5-9 from it, one class is forgotten (``forget``) and ``audit_job``
runs with the retrain reference and the relearn attack; repeated for each ``--forget``
class (a fresh model each time, in a fresh copy of the pretrained workspace), with means
and worst cases over the classes. The original model's figures are measured on the same
audit samples before the forget (relearn needs a missing prompt, so the original has none).
Prints one table per mode and writes bench/results/audit.json. Targets: MIA-efficacy within
5 points of the reference (the label-free top-1 figure where SalUn's is degenerate);
distinguishability AUC within 0.05 of 0.5; relearn at every n within 5 points of the
reference. Not part of the test run.

Statistics (docs/design.md section 15): per mode, the share of per-class verdicts that
pass / fail / are inconclusive against the spread of two retrainings, that spread
(reference vs second reference) for every figure, and RMIA against LiRA with the same
shadow models on the same targets. ``--default-digits`` instead times a default audit of
the default digits models (the demo's independent one and a full one: reference, second
reference, relearn with the default seeds), cold (references trained and attacked) and warm
(both cached); writes bench/results/audit-digits-default.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "audit.json"
ARCH = {"patch_size": 7, "overrides": {"embed_dim": 64, "depth": 3, "num_heads": 4,
                                       "mlp_ratio": 2.0}}
ARCHS = {"fashion-mnist": ARCH,
         "digits": {"patch_size": 4, "overrides": {"embed_dim": 32, "depth": 2, "num_heads": 2,
                                                   "mlp_ratio": 2.0}}}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=500, help="train images per class")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--modes", nargs="+", default=["frozen", "lora", "full"])
    p.add_argument("--forget", type=int, nargs="+", default=[7, 9, 5],
                   help="class ids to forget, one trial each (5-9)")
    p.add_argument("--lira", type=int, default=2, help="LiRA shadow models (0 = skip)")
    p.add_argument("--lira-modes", nargs="*", default=["full"])
    p.add_argument("--relearn-seeds", type=int, default=3)
    p.add_argument("--audit-per-class", type=int, default=1000)
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="torch threads (default: one core left free, at most 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workspace", type=Path, help="keep the workspace here (default: temp)")
    p.add_argument("--dataset", choices=sorted(ARCHS), default="fashion-mnist")
    p.add_argument("--default-digits", action="store_true",
                   help="time a default audit of the default digits model instead")
    p.add_argument("--digits-epochs", type=int, default=None,
                   help="with --default-digits: train for this many epochs, not the default")
    return p.parse_args(argv)


def default_threads() -> int:
    """One core left to the OS and the other processes (two threads on a two-core machine
    spin against each other and everything else), at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def trial_workspace(pretrained: Path, root: Path, cid: int) -> Path:
    """A fresh copy of the pretrained workspace for the trial forgetting ``cid``: models of
    a mode trained alike (``frozen`` is deterministic) hold the same class bytes, and a
    forget refuses to purge bytes another model still serves (section 4.5.2)."""
    trial = root / f"trial-{cid}"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(pretrained, trial)
    return trial


def data_options(args: argparse.Namespace, classes: str) -> dict[str, Any]:
    return {"dataset": args.dataset, "classes": [classes], "epochs": args.epochs,
            "max_per_class": args.per_class, "seed": args.seed, "device": "cpu",
            **ARCHS[args.dataset]}


def pretrain(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from engine.image_jobs import pretrain_backbone_job
    from engine.jobs import run_job

    result = run_job(pretrain_backbone_job(root, name="fm-0-4", operator="bench",
                                           **data_options(args, "0-4")), _progress("pretrain"))
    return {"test_accuracy": result["test_accuracy"], "seconds": result["seconds"]}


def run_mode(root: Path, mode: str, cid: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train, measure the original, forget ``cid``, audit; every figure and timing."""
    from engine.audit.job import audit_job
    from engine.forget import forget_job
    from engine.image_jobs import train_model_job
    from engine.jobs import run_job

    name = f"fm-{mode}-{cid}"
    trained = run_job(train_model_job(root, name=name, operator="bench", mode=mode,
                                      backbone_from="fm-0-4", **_no_arch(args, data_options(
                                          args, "5-9"))), _progress(f"train {mode}"))
    original, seconds = timed(measure_original, root, name, cid, args)
    forgot = run_job(forget_job(root, model_name=name, classes=[str(cid)],
                                operator="bench"))
    lira = args.lira if mode in args.lira_modes else 0
    start = time.monotonic()
    audit = run_job(audit_job(root, name, reference=True, relearn=True, lira=lira,
                              seed=args.seed, operator="bench", device="cpu",
                              per_class=args.audit_per_class,
                              relearn_seeds=args.relearn_seeds),
                    _progress(f"audit {mode} {cid}"))
    return {"mode": mode, "forgotten_class": cid, "erasure_kind": trained["erasure_kind"],
            "train_seconds": trained["seconds"], "train_test_accuracy": trained["test_accuracy"],
            "forget_latency_ms": forgot["latency_ms"], "original_seconds": seconds,
            "audit_seconds": time.monotonic() - start, "original": original,
            "forgotten": _strip(audit), "reference": audit["reference"]}


def measure_original(root: Path, name: str, cid: int,
                     args: argparse.Namespace) -> dict[str, Any]:
    """The section-5 figures of the model before the forget, on the audit's samples."""
    from engine.audit.measure import measure
    from engine.audit.outputs import audit_data, model_outputs
    from engine.datasets import load_reference
    from engine.model_store import load_live
    from storage.workspace import Workspace

    ws = Workspace.open(root)
    try:
        model, info = load_live(ws, name)
    finally:
        ws.close()
    data = audit_data(load_reference(info["dataset"]), [cid], args.audit_per_class,
                      args.seed)
    metrics, _curves = measure(model_outputs(model, data), data, args.seed)
    return metrics


def targets(mode: dict[str, Any]) -> dict[str, Any]:
    """The three targets, and whether the forgotten model leaks more than the reference."""
    f, r = mode["forgotten"], mode["reference"]
    relearn_gap = {n: f["relearn"][n] - r["relearn"][n] for n in ("1", "5", "20")}
    probe_gap = f["linear_probe"]["forget_accuracy"] - r["linear_probe"]["forget_accuracy"]
    key = mia_key(f, r)
    return {
        "mia_figure": key,
        "mia_efficacy_gap": f[key] - r[key],
        "mia_efficacy_ok": abs(f[key] - r[key]) <= 0.05,
        "distinguishability_off_half": f["forget_distinguishability_auc"] - 0.5,
        "distinguishability_ok": abs(f["forget_distinguishability_auc"] - 0.5) <= 0.05,
        "relearn_gap": relearn_gap,
        "relearn_ok": all(abs(v) <= 0.05 for v in relearn_gap.values()),
        "linear_probe_gap": probe_gap,
        "leaks_more_than_reference": [k for k, v in [("relearn", max(relearn_gap.values())),
                                                      ("linear_probe", probe_gap),
                                                      ("membership", r[key] - f[key])]
                                      if v > 0.05],
    }


def mia_key(f: dict[str, Any], r: dict[str, Any]) -> str:
    """SalUn's MIA-efficacy, or the label-free top-1 figure where SalUn's is degenerate."""
    degenerate = f.get("mia_efficacy_degenerate") or r.get("mia_efficacy_degenerate")
    return "mia_efficacy_top1" if degenerate and "mia_efficacy_top1" in f else "mia_efficacy"


def figures(m: dict[str, Any] | None) -> dict[str, Any]:
    """The figures printed per row (None where a model has none)."""
    if m is None:
        return {}
    rows = {f"scorecard.{k}": m["scorecard"][k] for k in
            ("forget_accuracy", "retain_accuracy", "test_accuracy")}
    rows["mia_efficacy"] = m["mia_efficacy"]
    if "mia_efficacy_top1" in m:
        rows["mia_efficacy_top1"] = m["mia_efficacy_top1"]
    for attack, entry in m["threshold_attacks"].items():
        for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr"):
            rows[f"{attack}.{key}"] = entry[key]
    rows["forget_distinguishability_auc"] = m["forget_distinguishability_auc"]
    rows["linear_probe.forget_accuracy"] = m["linear_probe"]["forget_accuracy"]
    rows["linear_probe.retain_accuracy"] = m["linear_probe"]["retain_accuracy"]
    for n, value in (m.get("relearn") or {}).items():
        rows[f"relearn.{n}"] = value
    for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "forget_auc"):
        if "lira" in m:
            rows[f"lira.{key}"] = m["lira"][key]
    return rows


def print_mode(mode: dict[str, Any]) -> None:
    o, f, r = (figures(mode[k]) for k in ("original", "forgotten", "reference"))
    print(f"\n== {mode['mode']} ({mode['erasure_kind']}), class {mode['forgotten_class']}: "
          f"trained {mode['train_seconds']:.0f} s, "
          f"forget {mode['forget_latency_ms']:.0f} ms, audit {mode['audit_seconds']:.0f} s, "
          f"reference trained {mode['reference']['scorecard']['run_time_s']:.0f} s")
    print(f"{'figure':34} {'original':>9} {'forgotten':>9} {'reference':>9}")
    for key in f:
        print(f"{key:34} {_cell(o.get(key))} {_cell(f.get(key))} {_cell(r.get(key))}")
    t = mode["targets"]
    print(f"targets: {t['mia_figure']} gap {t['mia_efficacy_gap']:+.3f} "
          f"({'ok' if t['mia_efficacy_ok'] else 'MISSED'}); distinguishability "
          f"{t['distinguishability_off_half']:+.3f} from 0.5 "
          f"({'ok' if t['distinguishability_ok'] else 'MISSED'}); relearn gaps "
          + ", ".join(f"n={n}: {v:+.3f}" for n, v in t["relearn_gap"].items())
          + f" ({'ok' if t['relearn_ok'] else 'MISSED'})")
    if t["leaks_more_than_reference"]:
        print("LEAKS MORE THAN THE RETRAIN REFERENCE: "
              + ", ".join(t["leaks_more_than_reference"]))


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.default_digits:
        from bench.audit_stats import default_digits

        return default_digits(args.threads, args.seed, args.digits_epochs)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workspace or Path(tmp) / "ws"
        root.mkdir(parents=True, exist_ok=True)
        report = {"config": {**{k: str(v) if isinstance(v, Path) else v
                                for k, v in vars(args).items()}, "arch": ARCH},
                  "machine": {"cpu_threads": args.threads, "python": platform.python_version(),
                              "torch": torch.__version__},
                  "backbone": pretrain(root / "pretrained", args), "modes": []}
        for cid in args.forget:
            trial = trial_workspace(root / "pretrained", root, cid)
            for mode in args.modes:
                result = run_mode(trial, mode, cid, args)
                result["targets"] = targets(result)
                report["modes"].append(result)
                print_mode(result)
    from bench.audit_stats import noise_summary, print_noise

    report["summary"] = summarise(report["modes"], args.modes)
    print_summary(report["summary"])
    report["noise"] = noise_summary(report["modes"], args.modes)
    print_noise(report["noise"])
    report["seconds"] = time.monotonic() - start
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = RESULTS if args.dataset == "fashion-mnist" else RESULTS.with_name(
        f"audit-{args.dataset}.json")
    out.write_text(json.dumps(report, indent=1, sort_keys=True))
    print(f"\nwrote {out.relative_to(ROOT)} in {report['seconds']:.0f} s")
    return 0


def summarise(trials: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Per mode, over the forgotten classes: mean and worst gap of each target figure."""
    out = {}
    for mode in modes:
        mine = [m["targets"] for m in trials if m["mode"] == mode]
        gaps = {"mia": [t["mia_efficacy_gap"] for t in mine],
                "distinguishability": [t["distinguishability_off_half"] for t in mine],
                **{f"relearn_{n}": [t["relearn_gap"][n] for t in mine] for n in ("1", "5", "20")}}
        out[mode] = {"classes": [m["forgotten_class"] for m in trials if m["mode"] == mode],
                     "mia_figure": sorted({t["mia_figure"] for t in mine}),
                     "mean_gap": {k: sum(v) / len(v) for k, v in gaps.items()},
                     "worst_gap": {k: max(v, key=abs) for k, v in gaps.items()},
                     "leaks_more_than_reference": sorted({x for t in mine
                                                          for x in t["leaks_more_than_reference"]})}
    return out


def print_summary(summary: dict[str, Any]) -> None:
    keys = ["mia", "distinguishability", "relearn_1", "relearn_5", "relearn_20"]
    print("\nmodel minus retrain reference, mean (worst) over classes "
          "(distinguishability: AUC - 0.5); targets 0.05 each")
    print(f"{'mode':8} " + " ".join(f"{k:>19}" for k in keys) + "  leaks more")
    for mode, s in summary.items():
        cells = " ".join(f"{s['mean_gap'][k]:+9.3f} ({s['worst_gap'][k]:+.3f})" for k in keys)
        print(f"{mode:8} {cells}  {', '.join(s['leaks_more_than_reference']) or '-'}")


def timed(fn, *args: Any) -> tuple[Any, float]:  # noqa: ANN001
    start = time.monotonic()
    return fn(*args), time.monotonic() - start


def _no_arch(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    """A model built from a registered backbone takes its architecture from it."""
    return {k: v for k, v in options.items() if k not in ARCHS[args.dataset]}


def _strip(audit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in audit.items() if k not in ("reference",)}


def _cell(value: Any) -> str:
    return f"{'-':>9}" if value is None else f"{value:9.3f}"


def _progress(label: str):  # noqa: ANN202
    last = [0.0]

    def show(record: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= 30 or record.fraction == 1.0:
            last[0] = now
            pct = "" if record.fraction is None else f"{record.fraction:6.1%} "
            print(f"  [{label}] {pct}{record.message}", file=sys.stderr, flush=True)
    return show


if __name__ == "__main__":
    raise SystemExit(main())
