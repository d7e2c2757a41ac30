"""Promoting a retrained model: steps 2-4 of ``engine.retrain`` (docs/design.md section 18).

The residual-scan patterns are read before the commit (the purge destroys the bytes):
every tensor of every artifact an earlier version of the model listed, less the tensors
that stay (the retrained version's, and the backbones still served: a frozen tensor that
never trained is the same in both and learned nothing), less constant tensors.
"""

from __future__ import annotations

import time
from typing import Any

from engine.forget import crash_point
from engine.residual_scan import MIN_PATTERN, scan_workspace
from storage import retrain as rt
from storage.models import AuditRun, ModelVersion
from storage.post_forget import pending_record, record_checks
from storage.registry import get_model
from storage.residue import fingerprint
from storage.workspace import Workspace


def promote(ws: Workspace, model_name: str, reference_run: int, requests: list[int],
            operator: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Commit, purge and scan; returns the version, purge and scan figures."""
    _refuse_if_stale(ws, model_name, reference_run, operator)
    patterns = _patterns(ws, model_name, reference_run)
    start = time.perf_counter()
    crash_point("retrain-before-commit")
    with ws.sessions.begin() as session:
        model = get_model(session, model_name)
        run = session.get(AuditRun, reference_run)
        rows = rt.check_pending(session, model, [])  # again at commit: batch what waits now
        new, doomed, retired = rt.commit_retrain(session, model, run, rows, operator,
                                                 _metrics(figures, reference_run))
        ws.artifacts.mark_for_purge(session, doomed)
        ids = [r.id for r in rows]
        new.metrics = {**new.metrics, **pending_record(
            [fingerprint(p) for p in patterns], doomed, None, operator, retrain=ids)}
        number, version_id = new.number, new.id
    crash_point("retrain-after-commit")
    purged = ws.artifacts.purge_marked(after_each=lambda _sha: crash_point("retrain-mid-purge"))
    scan = scan_workspace(ws.root, patterns)
    seconds = (time.perf_counter() - start) * 1000.0
    with ws.sessions.begin() as session:
        record_checks(session, session.get(ModelVersion, version_id), purged, scan, None)
    _check_loads(ws, model_name)
    return {"version": number, "purged": purged, "residual_scan": scan,
            "references_retired": retired, "covered": ids, "promote_ms": seconds,
            "erasure_kind": "exact"}


def _refuse_if_stale(ws: Workspace, model_name: str, reference_run: int,
                     operator: str) -> None:
    """A forget interleaved with the retrain: retire (and purge) the reference that learned
    the class, then refuse (``storage.retrain.refuse_stale``)."""
    from engine.audit.reference import retire_stale
    from storage.errors import RefusedError

    with ws.sessions() as session:
        try:
            rt.refuse_stale(get_model(session, model_name), session.get(AuditRun,
                                                                        reference_run))
            return
        except RefusedError as exc:
            refusal = exc
    retire_stale(ws, model_name, operator)
    raise refusal


def _metrics(figures: dict[str, Any], reference_run: int) -> dict[str, Any]:
    after = figures["accuracy_retrain"]
    return {"retrain": {"reference_run": reference_run, "from_version": figures["from_version"],
                        "seconds": figures["train_seconds"], "cached": figures["cached"],
                        "retained_live": figures["retained_live"],
                        "retained_retrain": figures["retained_retrain"],
                        "margin": figures["margin"]},
            "accuracy_before": {"per_class": figures["before"]},
            "accuracy_after": after, "test_accuracy": after["retained"]}


def _patterns(ws: Workspace, model_name: str, reference_run: int) -> list[bytes]:
    """The tensor bytes no workspace file may hold once the earlier versions are purged."""
    with ws.sessions() as session:
        model = get_model(session, model_name)
        run = session.get(AuditRun, reference_run)
        kept = {run.metrics["shared_artifact"], *run.metrics["class_artifacts"].values()}
        kept |= {v.shared_artifact for v in session.query(ModelVersion).filter(
            ModelVersion.model_id != model.id, ModelVersion.status != "purged")}
        earlier = [sha for sha in rt.earlier_artifacts(model) if sha not in kept]
    staying = {fp for sha in kept if sha for fp in _tensors(ws, sha)}
    out = [fp for sha in earlier for fp in _tensors(ws, sha)
           if fp not in staying and len(set(fp)) > 1]
    return [p for p in dict.fromkeys(out) if len(p) >= MIN_PATTERN]


def _tensors(ws: Workspace, sha: str) -> list[bytes]:
    """The tensor bytes of one stored artifact (none when it is already gone)."""
    from engine.serialize import class_tensor_fingerprints
    from storage.errors import UnpromptError

    try:
        return class_tensor_fingerprints(ws.artifacts.get(sha))
    except UnpromptError:
        return []


def _check_loads(ws: Workspace, model_name: str) -> None:
    """The promoted version assembles from its verified artifacts."""
    from engine.model_store import load_version
    from storage.registry import live_version

    with ws.sessions() as session:
        load_version(ws, live_version(session, get_model(session, model_name)))
