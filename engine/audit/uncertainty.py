"""The audit's last stage: RMIA, bootstrap intervals and verdicts against noise.

docs/design.md section 15. Reads what the earlier stages left in the run (each model's
outputs and per-sample outcomes, the relearn runs) and adds to its metrics:
``rmia`` per model, ``statistics`` (every figure with its interval, paired gap, floor
and verdict, per class and overall) and ``reference.floor`` (the reference-vs-reference
gap of every figure); to its curves the RMIA ROC of each model.
"""

from __future__ import annotations

from typing import Any

from engine.audit import rmia_audit
from engine.audit.evidence import attack, model_evidence, seed_figures
from engine.audit.intervals import BOOTSTRAP, LEVEL, Draws
from engine.audit.verdicts import floor_of, statistics

MODELS = ("model", "reference", "twin")


def judge_run(run: Any) -> None:
    """Fill ``run.metrics`` / ``run.curves`` with RMIA, intervals and verdicts."""
    data, seed = run.data, run.opts.seed
    outputs = {n: o for n, o in run.extra.get("outputs", {}).items() if n in MODELS}
    attacked = rmia_audit.audit_rmia(outputs, data, seed, run.extra.get("rmia_a"))
    for name, (metrics, scores) in attacked.items():
        run.metrics[name]["rmia"] = metrics
        run.curves[name]["rmia"] = rmia_audit.chart(scores)
    if "reference" not in outputs:
        return
    draws = Draws.make(len(data.train_y), len(data.test_y), seed)
    evidence = {n: model_evidence(outputs[n], data, run.extra["samples"][n], draws,
                                  attacked.get(n, (None, None))[1]) for n in outputs}
    _add_relearn(run, evidence)
    _add_lira(run, evidence)
    stats = statistics(evidence["model"], evidence["reference"], evidence.get("twin"),
                       resamples=BOOTSTRAP, level=LEVEL)
    run.metrics["model"]["statistics"] = stats
    run.metrics["reference"]["floor"] = floor_of(stats)


def _add_lira(run: Any, evidence: dict[str, dict]) -> None:
    """LiRA (and RMIA with the LiRA shadows) on the LiRA targets, resampled on their own
    draws (the same for every model: paired gaps)."""
    scores = run.extra.get("lira_scores") or {}
    if not scores:
        return
    member, nonmember = next(iter(scores.values()))["lira"]
    draws = Draws.make(len(member), len(nonmember), run.opts.seed + 5)
    for name, parts in scores.items():
        for attack_name, (m, n) in parts.items():
            prefix = "lira" if attack_name == "lira" else "lira.rmia"
            for key, fig in attack(m, n, draws.train, draws.test).items():
                evidence.get(name, {})[f"{prefix}.{key}"] = fig


def _add_relearn(run: Any, evidence: dict[str, dict]) -> None:
    runs = run.extra.get("relearn_runs") or {}
    names = [run.data.names[c] for c in run.facts["forgotten"]]
    for name, per_shot in runs.items():
        if name in evidence:
            evidence[name].update(seed_figures(per_shot, names, run.opts.relearn_seeds,
                                               run.opts.seed, BOOTSTRAP))
