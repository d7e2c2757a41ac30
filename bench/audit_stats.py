"""The statistics part of bench/audit.py (docs/design.md section 15): verdict shares,
the spread of two retrainings per figure, RMIA vs LiRA, and the default digits audit's
wall time. Not part of the test run."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIGITS = ROOT / "bench" / "results" / "audit-digits-default.json"
VERDICTS = ("pass", "fail", "inconclusive", None)
KEYS = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")


def noise_summary(trials: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Per mode: verdict shares per class and overall, floors, RMIA vs LiRA."""
    out = {}
    for mode in modes:
        mine = [t["forgotten"] for t in trials if t["mode"] == mode]
        stats = [m.get("statistics") or {} for m in mine]
        classes = [e.get("verdict") for s in stats for e in (s.get("per_class") or {}).values()]
        floors: dict[str, list[float]] = {}
        for s in stats:
            for key, entry in (s.get("figures") or {}).items():
                if "floor" in entry:
                    floors.setdefault(key, []).append(entry["floor"])
        out[mode] = {
            "class_verdict_share": _shares(classes), "classes_judged": len(classes),
            "overall_verdicts": [(s.get("verdict") or {}).get("verdict") for s in stats],
            "floor_mean": {k: sum(v) / len(v) for k, v in sorted(floors.items())},
            "rmia_vs_lira": [_versus(m) for m in mine if "lira" in m],
            "rmia_twin_refs": [{k: (m.get("rmia") or {}).get(k) for k in KEYS} for m in mine]}
    return out


def _shares(verdicts: list[str | None]) -> dict[str, float]:
    n = max(len(verdicts), 1)
    return {str(v): verdicts.count(v) / n for v in VERDICTS}


def _versus(m: dict[str, Any]) -> dict[str, Any]:
    """LiRA and RMIA with the same shadow models on the same targets."""
    lira, rmia = m["lira"], m["lira"].get("rmia") or {}
    return {"lira": {k: lira.get(k) for k in KEYS}, "rmia": {k: rmia.get(k) for k in KEYS},
            "rmia_a": rmia.get("a"), "k": lira.get("k"),
            "rmia_omitted": rmia.get("omitted", {})}


def print_noise(noise: dict[str, Any]) -> None:
    print("\nper-class verdicts against the spread of two retrainings (share of classes)")
    print(f"{'mode':8} {'pass':>6} {'fail':>6} {'inconcl':>8} {'n/j':>6}  overall")
    for mode, s in noise.items():
        sh = s["class_verdict_share"]
        print(f"{mode:8} {sh['pass']:6.0%} {sh['fail']:6.0%} {sh['inconclusive']:8.0%} "
              f"{sh['None']:6.0%}  {', '.join(str(v) for v in s['overall_verdicts'])}")
    print("\nRMIA vs LiRA, same shadow models and targets (AUC; TPR at 0.1% FPR)")
    for mode, s in noise.items():
        for v in s["rmia_vs_lira"]:
            print(f"{mode:8} LiRA {_f(v['lira']['auc'])}; {_f(v['lira']['tpr_at_0_1pct_fpr'])}"
                  f"   RMIA {_f(v['rmia']['auc'])}; {_f(v['rmia'].get('tpr_at_0_1pct_fpr'))}"
                  f"   (a={v['rmia_a']}, K={v['k']})")
    print("\nspread of two retrainings (|reference - second reference|), mean over trials")
    keys = sorted({k for s in noise.values() for k in s["floor_mean"]})
    print(f"{'figure':44} " + " ".join(f"{m:>8}" for m in noise))
    for key in keys:
        print(f"{key:44} " + " ".join(_f(s["floor_mean"].get(key)) for s in noise.values()))


def _f(value: Any) -> str:
    return f"{'-':>8}" if value is None else f"{value:8.3f}"


def default_digits(threads: int, seed: int = 0, epochs: int | None = None,
                   modes: tuple[str, ...] = ("independent", "full")) -> int:
    """Time ``audit_job`` with its defaults (plus relearn, as the Audits screen ticks it)
    on the default digits models: the first-start demo's (``independent`` on a backbone
    pretrained on 0-4) and a ``full`` one; cold (references trained, their relearn run)
    and warm (both read from the cache, only the audited model attacked).

    Wall and CPU seconds per stage (the label before the first ':' of a progress message).
    ``epochs`` trains the backbone / full model (and so its references) for fewer epochs
    than the default, on a machine too loaded to train the default: the reference stages
    then scale with the epochs, the others do not."""
    from engine.audit.job import RELEARN_SEEDS

    report: dict[str, Any] = {"relearn_seeds": RELEARN_SEEDS, "train_epochs": epochs or
                              "default", "models": {},
                              "machine": {"cpus": os.cpu_count(), "torch_threads": threads,
                                          "load_average_before": os.getloadavg()}}
    for mode in modes:
        with tempfile.TemporaryDirectory() as tmp:
            report["models"][mode] = _timed_audits(Path(tmp) / "ws", mode, seed, epochs)
    DEFAULT_DIGITS.write_text(json.dumps(report, indent=1, sort_keys=True))
    print(f"wrote {DEFAULT_DIGITS.relative_to(ROOT)}")
    return 0


def _timed_audits(root: Path, mode: str, seed: int, epochs: int | None) -> dict[str, Any]:
    from engine.audit.job import audit_job
    from engine.forget import forget_job
    from engine.jobs import run_job

    start, cpu = time.monotonic(), time.process_time()
    trained, cid = _train_digits(root, mode, seed, epochs)
    out: dict[str, Any] = {"train_seconds": time.monotonic() - start,
                           "train_cpu_seconds": time.process_time() - cpu,
                           "train_test_accuracy": trained["test_accuracy"], "audits": []}
    run_job(forget_job(root, model_name="digits", classes=[cid], operator="bench"))
    for label in ("cold", "warm"):
        start, cpu, stages = time.monotonic(), time.process_time(), {}
        result = run_job(audit_job(root, "digits", relearn=True, operator="bench",
                                   device="cpu"), _stderr(f"{mode} {label}", stages))
        relearn = {k: v for k, v in result["statistics"]["figures"].items()
                   if k.startswith("relearn.")}
        out["audits"].append({"run": label, "seconds": time.monotonic() - start,
                              "stages": stages, "cpu_seconds": time.process_time() - cpu,
                              "load_average": os.getloadavg(),
                              "verdict": result["statistics"]["verdict"],
                              "relearn": relearn,
                              "rmia": {k: result["rmia"].get(k) for k in (*KEYS, "a")}})
        a = out["audits"][-1]
        print(f"{mode:12} {label:5} audit {a['seconds']:6.1f} s wall, {a['cpu_seconds']:6.1f} "
              f"s CPU, load {a['load_average'][0]:.1f}; verdict {a['verdict']['verdict']}")
    return out


def _train_digits(root: Path, mode: str, seed: int, epochs: int | None
                  ) -> tuple[dict[str, Any], str]:
    """The demo's model (independent on a backbone pretrained on 0-4; class 7 forgotten)
    or a full digits model (class 3 forgotten)."""
    from engine.image_jobs import pretrain_backbone_job, train_model_job
    from engine.jobs import run_job

    extra = {} if epochs is None else {"epochs": epochs}
    if mode != "independent":
        return run_job(train_model_job(root, name="digits", operator="bench", dataset="digits",
                                       seed=seed, mode=mode, **extra)), "3"
    run_job(pretrain_backbone_job(root, name="digits-public", operator="bench",
                                  dataset="digits", classes=[0, 1, 2, 3, 4], seed=seed,
                                  **extra))
    return run_job(train_model_job(root, name="digits", operator="bench", dataset="digits",
                                   mode="independent", classes=[5, 6, 7, 8, 9], seed=seed,
                                   backbone_from="digits-public")), "7"


def _stderr(label: str, stages: dict[str, dict[str, float]]):  # noqa: ANN202
    last = [0.0]

    def show(record: Any) -> None:
        now, cpu = time.monotonic(), time.process_time()
        stage = (record.message or "").split(":", 1)[0]
        entry = stages.setdefault(stage, {"wall": 0.0, "cpu": 0.0, "_w": now, "_c": cpu})
        entry["wall"], entry["cpu"] = now - entry["_w"], cpu - entry["_c"]
        if record.fraction is not None and now - last[0] >= 15:
            last[0] = now
            print(f"  [{label}] {record.fraction:6.1%} {record.message}", file=sys.stderr,
                  flush=True)
    return show
