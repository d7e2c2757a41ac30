"""The attack stages of an image audit (docs/design.md sections 5 and 15): the relearn
attack and offline LiRA / RMIA, each against the model, the retrain reference and its twin.
Each stage is a job over the audit's run state (``engine.audit.job``), yields Progress and
honours the CancelToken.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from engine.audit.reference import backbone_state
from engine.audit.stages import scaled
from engine.jobs import CancelToken, Progress

if TYPE_CHECKING:
    from engine.audit.job import _Run


def relearn_stage(run: _Run, operator: str, cancel: CancelToken
                  ) -> Generator[Progress, None, None]:
    """The relearn attack on each model; a stored reference's figures for the same attack
    are kept with it and read back, not recomputed (docs/design.md section 15)."""
    from engine.audit.reference import cached_relearn, keep_relearn, relearn_key
    from engine.audit.relearn import recipe, relearn_job

    seeds = [run.opts.seed + i for i in range(run.opts.relearn_seeds)]
    key = relearn_key(recipe(seeds, run.opts.relearn_epochs), run.facts["forgotten"],
                      run_device(run))
    names = [n for n in ("model", "reference", "twin") if n in run.models]
    for i, name in enumerate(names):
        stored = run.extra.get(name, {}).get("audit_run") if name != "model" else None
        result = cached_relearn(run.ws, stored, key)
        if result is None:
            job = relearn_job(run.models[name], run.dataset, run.facts["forgotten"],
                              seeds=seeds, epochs=run.opts.relearn_epochs,
                              device=run_device(run), cancel=cancel)
            result = yield from scaled(job, i / len(names), (i + 1) / len(names), name)
            keep_relearn(run.ws, stored, key, result)
        run.metrics[name]["relearn"] = result["mean"]
        run.extra.setdefault("relearn_runs", {})[name] = result["runs"]
        run.curves[name]["relearn"] = result


def lira_stage(run: _Run, operator: str, cancel: CancelToken
               ) -> Generator[Progress, None, None]:
    """Offline LiRA (and RMIA on the same shadow models) against every model audited."""
    from engine.audit.lira import lira_job

    targets = {n: run.models[n] for n in ("model", "reference", "twin") if n in run.models}
    state = backbone_state(run.ws, run.facts["backbone_source"])
    results = yield from lira_job(targets, run.dataset, run.facts["config"], state,
                                  k=run.opts.lira, forgotten=run.facts["forgotten"],
                                  seed=run.opts.seed, cancel=cancel)
    for name, (metrics, points, scores) in results.items():
        run.metrics[name]["lira"], run.curves[name]["lira"] = metrics, points
        run.extra.setdefault("lira_scores", {})[name] = scores
        run.extra["rmia_a"] = {k: v for k, v in metrics["rmia"].items()
                               if k in ("a", "a_chosen", "a_basis", "a_grid_auc")}


def run_device(run: _Run) -> Any:
    from engine.device import resolve_device

    return resolve_device(run.opts.device)
