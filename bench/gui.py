"""GUI responsiveness while the engine works: the longest event-loop stall.

    python bench/gui.py [--epochs N] [--job train|mlp|forget-during-train|
                        forget-during-rule-build|forget-during-audit]

The main window (Requests screen, status bar following the job) runs offscreen with a real
engine worker. A QTimer ticks every 10 ms on the GUI thread and the gap between ticks is
recorded, first for a few seconds with the worker idle, then while the worker trains:
``train`` registers a digits model through ``engine.image_jobs:train_model_job`` (the same
job the CLI's ``train`` runs), ``mlp`` trains a small MLP on random data. Prints a table and
writes bench/results/gui.json. Target: max stall <= 100 ms.
``forget-during-train`` (bench/gui_interleave.py) submits forgets while a training runs:
time from submission to each forget's result (target <= 2 s), the training's slowdown and
the longest stall; writes bench/results/gui-interleave.json.
``forget-during-rule-build`` and ``forget-during-audit`` (bench/gui_longjobs.py) do the same
during the first-start demo's rule build and during an audit with LiRA shadows, forgets
in every phase of the long job; ``--alone`` runs the long job without forgets (the
reference for the slowdown); writes bench/results/gui-rulebuild.json / gui-audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gui.json"
INTERLEAVE_RESULTS = ROOT / "bench" / "results" / "gui-interleave.json"
LONGJOB_RESULTS = {"forget-during-rule-build": ROOT / "bench" / "results" / "gui-rulebuild.json",
                   "forget-during-audit": ROOT / "bench" / "results" / "gui-audit.json"}
TICK_MS = 10
TARGET_MS = 100.0


def mlp_job(seconds: float = 20.0, cancel: Any = None) -> Generator[Any, None, dict]:
    """CPU-heavy torch work for ``seconds``: a 3-layer MLP on random data."""
    import torch

    from engine.jobs import Progress

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(),
                              torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                              torch.nn.Linear(1024, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(4096, 512), torch.randint(0, 10, (4096,))
    start, steps = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        batch = torch.randint(0, len(x), (256,))
        loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        yield Progress(min(1.0, elapsed / seconds), f"step {steps}", {"loss": loss.item()})
    return {"steps": steps, "loss": loss.item()}


class StallMeter:
    """Records the gaps between ticks of a 10 ms QTimer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> list[float]:
        self._timer.stop()
        return list(self.gaps)

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000.0)
        self._last = now


def summary(gaps: list[float]) -> dict[str, float]:
    ordered = sorted(gaps) or [0.0]
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"ticks": len(gaps), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(pick(0.95), 2), "max_ms": round(ordered[-1], 2),
            "over_50ms": sum(g > 50 for g in gaps)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from engine.worker import EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.main_window import MainWindow
    from storage.workspace import Workspace

    app = QApplication.instance() or QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        bridge = EngineBridge(EngineClient())
        ctx = AppContext(ws, bridge)
        window = MainWindow(ctx)
        window.show()
        bridge.start()
        try:
            _wait(app, lambda: bridge.state == "idle", 120)
            meter = StallMeter()
            meter.start()
            _wait(app, lambda: False, args.idle_seconds)
            idle = meter.stop()
            if args.job == "forget-during-train":
                from bench.gui_interleave import run_interleave

                figures = run_interleave(app, ctx, meter, args, _wait, summary)
                return {"device": bridge.device, "idle": summary(idle), **figures}
            if args.job in LONGJOB_RESULTS:
                from bench.gui_longjobs import run_longjob

                figures = run_longjob(app, ctx, meter, args, _wait, summary)
                return {"device": bridge.device, "idle": summary(idle), **figures}
            job, gaps, wall = _run_job(app, ctx, meter, args)
        finally:
            window.close()
            bridge.close()
            ws.close()
    return {"device": bridge.device, "job": job, "idle": summary(idle),
            "during_job": summary(gaps), "job_wall_seconds": round(wall, 2)}


def _run_job(app: Any, ctx: Any, meter: StallMeter, args: argparse.Namespace
             ) -> tuple[dict[str, Any], list[float], float]:
    if args.job == "train":
        handle = ctx.submit_job("engine.image_jobs:train_model_job",
                                {"name": "bench-digits", "operator": "bench",
                                 "dataset": "digits", "epochs": args.epochs})
    else:
        handle = ctx.engine.submit("bench.gui:mlp_job", {"seconds": args.seconds})
    outcome: dict[str, Any] = {"target": handle.kind, "progress_events": 0}
    handle.progressed.connect(lambda _d: outcome.update(
        progress_events=outcome["progress_events"] + 1))
    handle.succeeded.connect(lambda value: outcome.update(result={
        k: value[k] for k in ("name", "test_accuracy", "seconds", "steps") if k in value}))
    handle.failed.connect(lambda message, _tb: outcome.update(error=message))
    handle.finished.connect(lambda status: outcome.update(status=status))
    start = time.perf_counter()
    meter.start()
    _wait(app, lambda: "status" in outcome, 1800)
    gaps = meter.stop()
    return outcome, gaps, time.perf_counter() - start


def _wait(app: Any, done: Any, seconds: float) -> None:
    """Run the event loop until ``done()`` or ``seconds`` pass (no busy sleeping)."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + seconds
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(50)

    def _on_check_timeout() -> None:
        if done() or time.monotonic() > deadline:
            loop.quit()

    check.timeout.connect(_on_check_timeout)
    check.start()
    loop.exec()
    check.stop()


def report(figures: dict[str, Any]) -> str:
    rows = [("idle worker", figures["idle"]), ("during job", figures["during_job"])]
    lines = [f"device: {figures['device']}   job: {figures['job']['target']} "
             f"({figures['job'].get('status')}, {figures['job_wall_seconds']} s)",
             f"{'phase':<12} {'ticks':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'>50 ms':>7}"]
    for name, s in rows:
        lines.append(f"{name:<12} {s['ticks']:>6} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} "
                     f"{s['max_ms']:>8.1f} {s['over_50ms']:>7}")
    verdict = "meets" if figures["during_job"]["max_ms"] <= TARGET_MS else "MISSES"
    lines.append(f"max stall during the job {verdict} the {TARGET_MS:.0f} ms target")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=["train", "mlp", "forget-during-train",
                                          *LONGJOB_RESULTS], default="train")
    parser.add_argument("--epochs", type=int, default=3, help="digits epochs (train job)")
    parser.add_argument("--setup-epochs", type=int, default=2,
                        help="epochs of the model the forgets use (forget-during-train)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs alone and interleaved, alternated (forget-during-train)")
    parser.add_argument("--compare-fifo", action="store_true",
                        help="also time a forget run one job at a time (forget-during-train)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration (mlp job)")
    parser.add_argument("--alone", action="store_true",
                        help="the long job without forgets (forget-during-rule-build / -audit)")
    parser.add_argument("--max-evals", type=int, default=1,
                        help="strength-search evaluations of the rule build (demo: 7)")
    parser.add_argument("--max-known", type=int, default=4,
                        help="known prompts per strength evaluation (demo: 20)")
    parser.add_argument("--lira", type=int, default=2, help="LiRA shadows (audit)")
    parser.add_argument("--per-class", type=int, default=100,
                        help="audit samples per class (audit)")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    interleave = args.job == "forget-during-train"
    if args.job in LONGJOB_RESULTS:
        return _main_longjob(args)
    args.out = args.out or (INTERLEAVE_RESULTS if interleave else RESULTS)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    figures = run(args)
    figures.update(target_max_stall_ms=TARGET_MS, tick_ms=TICK_MS, cpus=os.cpu_count(),
                   python=platform.python_version(), qt_platform=os.environ["QT_QPA_PLATFORM"])
    if interleave:
        from bench.gui_interleave import report_interleave

        print(report_interleave(figures))
    else:
        print(report(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


def _main_longjob(args: argparse.Namespace) -> int:
    """A long-job run; kept in the JSON file under its kind (alone / interleaved), with the
    slowdown once both kinds are there."""
    from bench.gui_longjobs import report_longjob

    out = args.out or LONGJOB_RESULTS[args.job]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    figures = run(args)
    figures.update(tick_ms=TICK_MS, cpus=os.cpu_count(), python=platform.python_version(),
                   load_average=os.getloadavg(), when=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                     time.gmtime()))
    kept = json.loads(out.read_text()) if out.exists() else {}
    kept[figures["kind"]] = figures
    if "alone" in kept and "interleaved" in kept:
        alone, mixed = (kept[k]["run"]["wall_s"] for k in ("alone", "interleaved"))
        kept["slowdown"] = figures["slowdown"] = round(mixed / alone - 1.0, 3)
    print(report_longjob(figures))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
