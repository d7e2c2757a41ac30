"""The steps of a forget after its purge, recorded or resumed (docs/design.md section 4).

The forget's transaction leaves ``forget_pending`` in the new version's metrics: the
fingerprints of the removed tensors (``storage.residue``; never their bytes), the
artifacts to purge, the request and the operator. ``record_checks`` keeps the purge and
residual-scan results with the request (its certificate quotes them) and clears the
pending entry; ``resume_checks`` runs at ``Workspace.open`` for a forget killed between
its commit and that record: it finishes the scan from the fingerprints. The version's
accuracy after the forget needs the model, so it stays ``evaluation_pending`` until the
engine measures it (``engine.forget.finish_evaluation``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import auditlog
from storage import requests as reqs
from storage.models import Artifact, ModelVersion
from storage.residue import scan_fingerprints
from storage.scan_proofs import proven_files

PENDING = "forget_pending"


def pending_record(fingerprints: list[dict[str, Any]], purge: list[str],
                   request: int | None, operator: str,
                   retrain: list[int] | None = None) -> dict[str, Any]:
    """What a resumed forget needs, kept in the new version's metrics at commit.

    ``retrain``: the requests a promoted retrain covers (docs/design.md section 18); their
    results keep the checks under ``retrain``, beside the forget's own."""
    record = {"fingerprints": fingerprints, "purge": purge, "request": request,
              "operator": operator, "pid": os.getpid(), "host": socket.gethostname()}
    if retrain is not None:
        return {PENDING: {**record, "retrain": retrain}}
    return {PENDING: record, "evaluation_pending": True}


def record_checks(session: Session, version: ModelVersion, purged: list[str],
                  scan: dict[str, Any], latency_ms: float | None,
                  resumed: bool = False) -> None:
    """Keep the purge and scan results (request and version); clear the pending entry."""
    pending = version.metrics.get(PENDING) or {}
    operator = pending.get("operator") or "unprompt"
    kept = {k: v for k, v in version.metrics.items() if k != PENDING}
    version.metrics = {**kept, "latency_ms": latency_ms}
    entry = {"model": version.model.name, "version": version.number, "purged": purged,
             "clean": scan["clean"], "files_scanned": scan["files_scanned"]}
    retrain = pending.get("retrain")
    if resumed:
        action = "model.forget_resumed" if retrain is None else "model.retrain_resumed"
        auditlog.append(session, operator, action, entry)
    if retrain is not None:
        _record_retrain(session, retrain, operator, purged, scan)
    elif pending.get("request") is not None:
        request = reqs.get_request(session, pending["request"])
        request.result = {**request.result, "purged": purged, "residual_scan": scan}
        auditlog.append(session, operator, "request.erasure_checked",
                        {"request": request.id, "purged": purged, "clean": scan["clean"],
                         "files_scanned": scan["files_scanned"]})


def _record_retrain(session: Session, ids: list[int], operator: str, purged: list[str],
                    scan: dict[str, Any]) -> None:
    """A retrain's purge and scan, kept with every request it made exact."""
    for rid in ids:
        request = reqs.get_request(session, rid)
        retrain = {**request.result.get("retrain", {}), "purged": purged,
                   "residual_scan": scan}
        request.result = {**request.result, "retrain": retrain}
        auditlog.append(session, operator, "request.erasure_checked",
                        {"request": request.id, "purged": purged, "clean": scan["clean"],
                         "files_scanned": scan["files_scanned"], "by": "retrain"})


def resume_checks(root: Path, sessions: sessionmaker[Session]) -> list[int]:
    """Finish the scan and its record of every forget killed after its commit; returns
    the ids of the versions it finished."""
    with sessions() as session:
        waiting = [(v.id, dict(v.metrics[PENDING])) for v in
                   session.scalars(select(ModelVersion)) if PENDING in (v.metrics or {})]
    done = []
    for version_id, pending in waiting:
        if _still_running(pending.get("pid"), pending.get("host")):
            continue  # that forget is finishing its own scan right now
        prints = pending["fingerprints"]
        proven = proven_files(root, {p["sha256"] for p in prints})
        scan = {**scan_fingerprints(root, prints, proven), "resumed": True}
        with sessions.begin() as session:
            version = session.get(ModelVersion, version_id)
            if PENDING not in version.metrics:
                continue  # the forget itself got there first
            purged = [sha for sha in pending["purge"]
                      if (row := session.get(Artifact, sha)) is not None
                      and row.status == "purged"]
            record_checks(session, version, purged, scan, None, resumed=True)
        done.append(version_id)
    return done


def _still_running(pid: int | None, host: str | None = None) -> bool:
    """Whether the process that committed the forget is alive (and not this one). A forget
    committed on another machine (a shared registry, docs/design.md section 12) cannot be
    probed from here: it is left to that machine. On Windows, where signal 0 is not a probe,
    a resume may repeat a scan (harmless)."""
    if host is not None and host != socket.gethostname():
        return True
    if not pid or pid == os.getpid() or os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
