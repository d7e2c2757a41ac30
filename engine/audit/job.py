"""``audit_job``: the image audits of docs/design.md section 5 against the registry.

Audits the live version of an image model whose classes were forgotten, optionally
against its retrain reference (cached, see ``engine.audit.reference``), with the relearn
attack and offline LiRA, and stores one AuditRun (metrics + curves) with its audit-log
entry in one transaction; requests executed for the forgotten classes become verified.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audit import facts as registry
from engine.audit.attack_stages import lira_stage, relearn_stage, run_device
from engine.audit.compose import assemble
from engine.audit.measure import measure
from engine.audit.outputs import AuditData, audit_data, model_outputs
from engine.audit.reference import (
    fans_out_references,
    reference_job,
    reference_jobs,
    retire_stale,
)
from engine.audit.schema import check_metrics
from engine.audit.stages import scaled
from engine.jobs import CancelToken, Progress
from storage import audits
from storage.errors import RefusedError, UnpromptError
from storage.workspace import Workspace

TWIN = 1  # the second reference trains with the model's seed + TWIN
PER_CLASS = 1000  # audit samples per class and split
RELEARN_SEEDS = 5  # the fewest for an interval over seeds that is worth quoting (section 15)
RELEARN_EPOCHS = 10


@dataclass
class AuditOptions:
    reference: bool = True
    lira: int = 0
    relearn: bool = False
    seed: int = 0
    per_class: int | None = PER_CLASS
    relearn_seeds: int = RELEARN_SEEDS
    relearn_epochs: int = RELEARN_EPOCHS
    device: str = "auto"
    twin: bool = True  # a second retrain reference (another seed): the noise floor
    rederive: int | None = None  # re-derive K classes (0: all; None: not at all)

    def check(self) -> None:
        if self.lira and self.lira < 2:
            raise UnpromptError("offline LiRA needs at least 2 shadow models (--lira K, K >= 2)")
        if self.rederive is not None and self.rederive < 0:
            raise UnpromptError("--rederive K needs K >= 1 (or no K for every class)")
        if min(self.relearn_seeds, self.relearn_epochs) < 1 or (
                self.per_class is not None and self.per_class < 2):
            raise UnpromptError("relearn seeds / epochs and audit samples per class must be "
                                "positive")


@dataclass
class _Run:
    ws: Workspace
    opts: AuditOptions
    facts: dict[str, Any]
    dataset: Any
    data: AuditData
    models: dict[str, Any] = field(default_factory=dict)  # "model" / "reference"
    metrics: dict[str, dict] = field(default_factory=dict)
    curves: dict[str, dict] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def audit_job(workspace: str | Path, model_name: str, *, reference: bool = True,
              lira: int = 0, relearn: bool = False, seed: int = 0, operator: str,
              cancel: CancelToken | None = None, **options: Any
              ) -> Generator[Progress, None, dict[str, Any]]:
    """Run the audits; return the metrics object plus ``audit_run`` (the AuditRun id).

    The first parameter is named ``workspace`` like every registry job, so the engine
    worker gives the audit a row in the Job table."""
    opts = AuditOptions(reference=reference, lira=lira, relearn=relearn, seed=seed, **options)
    opts.check()
    cancel = cancel or CancelToken()
    start = time.monotonic()
    ws = Workspace.open(workspace)
    try:
        yield Progress(0.0, "loading the model and its recorded data")
        run = _prepare(ws, model_name, opts, operator)
        stages = _stages(opts)
        for name, step in (("model", _audit_model), ("rederive", _rederive),
                           ("reference", _audit_reference), ("twin", _audit_twin),
                           ("relearn", relearn_stage), ("lira", lira_stage),
                           ("statistics", _statistics)):
            if name in stages:
                cancel.check()
                yield from scaled(step(run, operator, cancel), *stages[name], name)
        cancel.check()
        yield Progress(1.0, "recording the audit")
        _refuse_if_changed(run, operator)  # after the last yield: nothing interleaves now
        return _record(run, operator, time.monotonic() - start)
    finally:
        ws.close()


def _stages(opts: AuditOptions) -> dict[str, tuple[float, float]]:
    twin = opts.reference and opts.twin
    weights = {"model": 1.0, "rederive": 1.0 if opts.rederive is not None else 0.0,
               "reference": 6.0 if opts.reference else 0.0,
               "twin": 6.0 if twin else 0.0,
               "relearn": (6.0 if twin else 4.0) if opts.relearn else 0.0,
               "lira": 5.0 * opts.lira, "statistics": 0.5}
    total, lo, out = sum(weights.values()), 0.0, {}
    for name, weight in weights.items():
        if weight:
            out[name] = (lo / total, (lo + weight) / total)
            lo += weight
    return out


def _prepare(ws: Workspace, model_name: str, opts: AuditOptions, operator: str) -> _Run:
    from engine.datasets import load_reference
    from engine.model_store import load_live

    facts = registry.registry_facts(ws, model_name)
    if opts.rederive is not None:  # before anything changes
        from engine.audit.rederive import refuse_other_mode

        refuse_other_mode(facts["config"].get("mode"), model_name)
    retire_stale(ws, model_name, operator)
    model, info = load_live(ws, model_name)
    dataset = load_reference(info["dataset"])
    forgotten = [c for c in facts["forgotten"] if c in dataset.class_ids]
    if not forgotten:
        raise UnpromptError(f"model {model_name!r} has no forgotten class of its recorded "
                            "dataset; there is no erasure to audit (see `forget`)")
    facts["forgotten"] = forgotten
    data = audit_data(dataset, forgotten, opts.per_class, opts.seed)
    return _Run(ws, opts, facts, dataset, data, models={"model": model})


def _audit_model(run: _Run, operator: str, cancel: CancelToken
                 ) -> Generator[Progress, None, None]:
    yield Progress(0.0, "scoring the forgotten model")
    _score(run, "model")
    run.metrics["model"]["scorecard"]["run_time_s"] = run.facts["forget_seconds"]
    yield Progress(1.0, "forgotten model scored")


def _score(run: _Run, name: str) -> None:
    """Outputs, figures and per-sample outcomes of one model on the audit samples."""
    out = model_outputs(run.models[name], run.data, run_device(run))
    samples: dict[str, Any] = {}
    run.metrics[name], run.curves[name] = measure(out, run.data, run.opts.seed, samples)
    run.extra.setdefault("outputs", {})[name] = out
    run.extra.setdefault("samples", {})[name] = samples


def _rederive(run: _Run, operator: str, cancel: CancelToken
              ) -> Generator[Progress, None, None]:
    """Re-derive the remaining classes and compare bytes (docs/design.md section 17)."""
    from engine.audit.rederive import rederive

    yield Progress(0.0, "re-deriving the remaining classes")
    count = run.opts.rederive or None
    run.extra["rederive"] = rederive(run.ws, run.facts, run.dataset, count, run.opts.seed)
    yield Progress(1.0, "classes re-derived")


def _audit_reference(run: _Run, operator: str, cancel: CancelToken
                     ) -> Generator[Progress, None, None]:
    if run.opts.twin and fans_out_references(run.facts):  # both at once (section 12)
        pair = [run.facts, _twin_facts(run.facts)]
        trained = yield from scaled(reference_jobs(run.ws, pair, run.dataset, operator, cancel),
                                    0.0, 0.9, "retrain references")
        for name, (model, info) in zip(("reference", "twin"), trained, strict=True):
            _keep_reference(run, name, model, info)
        yield Progress(1.0, "retrain references scored")
        return
    yield from _reference_scored(run, "reference", run.facts, "retrain reference", operator,
                                 cancel)


def _audit_twin(run: _Run, operator: str, cancel: CancelToken
                ) -> Generator[Progress, None, None]:
    """The second retrain reference: the same configuration with another training seed,
    cached like the first; its gap to the first is the noise floor (section 15)."""
    if "twin" not in run.models:  # not already trained beside the first
        yield from _reference_scored(run, "twin", _twin_facts(run.facts),
                                     "second retrain reference", operator, cancel)


def _twin_facts(facts: dict[str, Any]) -> dict[str, Any]:
    return {**facts, "config": {**facts["config"],
                                "seed": int(facts["config"].get("seed", 0)) + TWIN}}


def _reference_scored(run: _Run, name: str, facts: dict[str, Any], label: str,
                      operator: str, cancel: CancelToken) -> Generator[Progress, None, None]:
    """Train (or read from the cache) a retrain reference of ``facts`` and score it."""
    job = reference_job(run.ws, facts, run.dataset, operator, cancel)
    model, info = yield from scaled(job, 0.0, 0.9, label)
    _keep_reference(run, name, model, info)
    yield Progress(1.0, f"{label} scored")


def _keep_reference(run: _Run, name: str, model: Any, info: dict[str, Any]) -> None:
    run.models[name], run.extra[name] = model, info
    _score(run, name)
    run.metrics[name]["scorecard"]["run_time_s"] = info["seconds"]


def _statistics(run: _Run, operator: str, cancel: CancelToken
                ) -> Generator[Progress, None, None]:
    from engine.audit.uncertainty import judge_run

    yield Progress(0.0, "intervals, RMIA and verdicts")
    judge_run(run)
    yield Progress(1.0, "verdicts ready")


def _refuse_if_changed(run: _Run, operator: str) -> None:
    """A forget interleaved with the audit (issue 22) made the audited version old: its
    figures must not be filed under the new request, and a retrain reference trained on
    the class just forgotten is retired (its artifacts purged) at once."""
    from storage.registry import live_version

    with run.ws.sessions() as session:
        model = registry.model_row(session, run.facts)
        live = live_version(session, model)
        number, forgotten = live.number, sorted(
            c.display_name for c in model.classes if c.status == "forgotten"
            and c.label_index not in run.facts["forgotten"])
    if number == run.facts["version"]:
        return
    retire_stale(run.ws, run.facts["model"], operator)
    raise RefusedError(
        f"the audit of {run.facts['model']!r} v{run.facts['version']} was not recorded: the "
        f"model became v{number} while it ran (forgotten meanwhile: "
        f"{', '.join(forgotten) or 'none'}); run the audit again")


def _record(run: _Run, operator: str, seconds: float) -> dict[str, Any]:
    metrics, curves = assemble(run)
    if "rederive" in run.extra:
        metrics["rederive"] = run.extra["rederive"]
    problems = check_metrics(metrics, reference=run.opts.reference, lira=bool(run.opts.lira),
                             relearn=run.opts.relearn)
    if problems:
        raise UnpromptError(f"the audit produced malformed figures: {problems[0]}")
    config = {**vars(run.opts), "seconds": seconds, "forgotten": run.facts["forgotten"],
              "reference_run": run.extra.get("reference", {}).get("audit_run"),
              "reference_cached": run.extra.get("reference", {}).get("cached"),
              "twin_run": run.extra.get("twin", {}).get("audit_run"),
              "samples": {"train": len(run.data.train_y), "test": len(run.data.test_y)}}
    with run.ws.sessions.begin() as session:
        requests = audits.forget_requests(session, registry.model_row(session, run.facts))
        row = audits.record_audit(session, version_id=run.facts["version_id"], config=config,
                                  metrics=metrics, curves=curves, operator=operator,
                                  requests=requests)
        run_id = row.id
    return {**metrics, "audit_run": run_id}
