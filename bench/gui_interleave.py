"""``python bench/gui.py --job forget-during-train``: a forget while a long job runs (issue 22).

The long job is a training run (``engine.image_jobs:train_model_job`` on digits, simpler
to size than an audit with LiRA shadows, and the same ``fit`` loop the shadows use). With
the window up and a real worker: train a small model to forget from (setup); train a
second model alone (reference wall time); train a third with forgets of the first model's
classes submitted at fixed fractions of its progress (interleaved); optionally the same
with the forgets forced into the long lane, which is how every job ran before (one at a
time, in order). Reported: submission-to-result time of each forget (target <= 2 s), the
long job's slowdown against running alone, and the longest event-loop stall.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

FORGET_JOB = "engine.forget:forget_job"
TRAIN_JOB = "engine.image_jobs:train_model_job"
TARGET_S = 2.0
FORGETS = ((0.3, "1"), (0.6, "4"))  # (fraction of the long job, class of the setup model);
# repeat i forgets classes 1+i and 4+i


def run_interleave(app: Any, ctx: Any, meter: Any, args: Any, wait: Any,
                   summary: Any) -> dict[str, Any]:
    """The three (or four) runs; returns the figures for the JSON file."""
    # its own seed: a model trained alike would share its class bytes, and the forget would
    # (rightly) refuse to purge them from under the other model
    _train(app, ctx, wait, "bench-forget", args.setup_epochs, seed=7)
    _train(app, ctx, wait, "bench-warm-up", 1)  # first-run costs (dataset, allocator) out
    runs: dict[str, list[dict[str, Any]]] = {"alone": [], "interleaved": []}
    for i in range(args.repeats):  # alternated, so a load change on the machine hits both
        runs["alone"].append(_long_run(app, ctx, meter, wait, summary, f"bench-alone-{i}",
                                       args.epochs, []))
        forgets = [(at, str(int(label) + i)) for at, label in FORGETS]
        runs["interleaved"].append(_long_run(app, ctx, meter, wait, summary,
                                             f"bench-mixed-{i}", args.epochs, forgets))
    alone, mixed = (statistics.median(r["wall_s"] for r in runs[k]) for k in runs)
    figures = {"long_job": f"{TRAIN_JOB} digits, {args.epochs} epochs",
               "alone": _merged(runs["alone"]), "interleaved": _merged(runs["interleaved"]),
               "slowdown": round(mixed / alone - 1.0, 3), "repeats": args.repeats,
               "target_forget_s": TARGET_S}
    if args.compare_fifo:
        figures["one_at_a_time"] = _long_run(app, ctx, meter, wait, summary, "bench-fifo",
                                             args.epochs, ((0.3, "9"),), lane="long")
    return figures


def _merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one kind: median wall time, every forget, the worst stall."""
    worst = max((r["stall"] for r in runs), key=lambda stall: stall["max_ms"])
    return {"wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
            "walls_s": [r["wall_s"] for r in runs], "stall": worst,
            "forgets": [f for r in runs for f in r["forgets"]],
            "status": [r["status"] for r in runs]}


def _train(app: Any, ctx: Any, wait: Any, name: str, epochs: int,
           seed: int = 0) -> dict[str, Any]:
    handle = ctx.submit_job(TRAIN_JOB, {"name": name, "operator": "bench", "seed": seed,
                                        "dataset": "digits", "epochs": epochs})
    out: dict[str, Any] = {}
    handle.succeeded.connect(lambda value: out.update(value=value))
    handle.failed.connect(lambda message, _tb: out.update(error=message))
    handle.finished.connect(lambda status: out.update(status=status))
    wait(app, lambda: "status" in out, 1800)
    if out["status"] != "succeeded":
        raise RuntimeError(f"setup training failed: {out.get('error')}")
    return out["value"]


def _long_run(app: Any, ctx: Any, meter: Any, wait: Any, summary: Any, name: str,
              epochs: int, forgets: Any, lane: str | None = None) -> dict[str, Any]:
    """Train ``name``; at each (fraction, class) submit a forget of the setup model."""
    handle = ctx.submit_job(TRAIN_JOB, {"name": name, "operator": "bench",
                                        "dataset": "digits", "epochs": epochs})
    state: dict[str, Any] = {"forgets": [], "todo": list(forgets)}

    def on_progress(record: dict[str, Any]) -> None:
        fraction = record.get("fraction") or 0.0
        while state["todo"] and fraction >= state["todo"][0][0]:
            at, label = state["todo"].pop(0)
            state["forgets"].append(submit_forget(ctx, label, lane, at_fraction=at))

    handle.progressed.connect(on_progress)
    handle.finished.connect(lambda status: state.update(status=status, end=time.perf_counter()))
    start = time.perf_counter()
    meter.start()
    wait(app, lambda: "status" in state and all("status" in f for f in state["forgets"]),
         1800)
    gaps = meter.stop()
    return {"status": state["status"], "wall_s": round(state["end"] - start, 2),
            "forgets": [_forget_figures(f) for f in state["forgets"]],
            "stall": summary(gaps), "lane": lane or "by class"}


def submit_forget(ctx: Any, label: str, lane: str | None = None,
                  on_start: Any = None, **fields: Any) -> dict[str, Any]:
    """Submit a forget of ``label`` from the setup model; the returned record fills in as
    the forget starts and ends (``on_start(record)`` runs when it starts)."""
    record: dict[str, Any] = {"class": label, **fields, "submitted": time.perf_counter()}
    kwargs = {"workspace": str(ctx.workspace.root), "model_name": "bench-forget",
              "classes": [label], "operator": "bench"}
    handle = ctx.engine.submit(FORGET_JOB, kwargs, "forget", lane)

    def started() -> None:
        record["started"] = time.perf_counter()
        if on_start is not None:
            on_start(record)

    handle.started.connect(started)
    handle.succeeded.connect(lambda value: record.update(
        result=time.perf_counter(), latency_ms=value.get("latency_ms"),
        version=value.get("version")))
    handle.failed.connect(lambda message, _tb: record.update(error=message))
    handle.finished.connect(lambda status: record.update(status=status))
    return record


def _forget_figures(record: dict[str, Any]) -> dict[str, Any]:
    submitted = record["submitted"]
    since = lambda key: round(record[key] - submitted, 3) if key in record else None  # noqa: E731
    return {"class": record["class"], "at_fraction": record["at_fraction"],
            "status": record.get("status"), "error": record.get("error"),
            "to_start_s": since("started"), "to_result_s": since("result"),
            "engine_latency_ms": record.get("latency_ms"), "version": record.get("version")}


def report_interleave(figures: dict[str, Any]) -> str:
    """The table printed by ``bench/gui.py --job forget-during-train``."""
    lines = [f"device: {figures['device']}   long job: {figures['long_job']}   "
             f"runs alternated: {figures['repeats']} alone, {figures['repeats']} interleaved "
             "(wall: median; stall: worst)",
             f"{'run':<16} {'wall s':>7} {'max stall ms':>13} {'forget':>7} "
             f"{'to start s':>11} {'to result s':>12}"]
    for key in ("alone", "interleaved", "one_at_a_time"):
        run = figures.get(key)
        if run is None:
            continue
        rows = run["forgets"] or [{"class": "-", "to_start_s": None, "to_result_s": None}]
        for i, f in enumerate(rows):
            head = (f"{key:<16} {run['wall_s']:>7.1f} {run['stall']['max_ms']:>13.1f}"
                    if i == 0 else " " * 38)
            lines.append(f"{head} {f['class']:>7} {_num(f['to_start_s']):>11} "
                         f"{_num(f['to_result_s']):>12}")
    worst = max((f["to_result_s"] or 1e9 for f in figures["interleaved"]["forgets"]),
                default=None)
    verdict = "meets" if worst is not None and worst <= TARGET_S else "MISSES"
    lines.append(f"long-job slowdown with the forgets interleaved: "
                 f"{100 * figures['slowdown']:+.1f} %")
    lines.append(f"slowest interleaved forget {worst:.2f} s: {verdict} the {TARGET_S:.0f} s "
                 "target")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
