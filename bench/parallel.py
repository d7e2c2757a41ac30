"""Beyond one machine (issue 21): registry latency (SQLite vs PostgreSQL), LiRA on Ray.

    nice -n 5 python bench/parallel.py [--part registry|lira|all] [--ops 40] [--url ...]

Each backend gets a fresh registry with one image model of ``ops + 1`` classes, an approver
and ``ops`` open requests, then times, one operation per write unit as the product runs them:
``log append`` (one audit-log entry), ``approve`` (the real approval: passphrase check, which is
scrypt and the same on both backends, signed decision, log entry) and ``forget commit`` (the
registry transaction of a forget, docs/design.md section 4 step 2: version v+1, class
forgotten, purge marks, request executed, log entries; no model bytes). SQLite is the
workspace's own file (WAL, synchronous=FULL); PostgreSQL is ``--url`` or a throwaway local
server started from the system's binaries with fsync on (tests/pg.py). One client; the
figures are per operation. Writes bench/results/parallel.json. Not a test.

The LiRA part: LiRA with ``--shadows`` (8) shadow models on a small digits ViT, class 2
forgotten (the job ``tests.gui.jobs_for_tests:tiny_lira``), once on the local engine worker
(the shadows one after another) and once on a local Ray cluster of 2 CPUs through the Ray
backend (the shadows as parallel Ray tasks, docs/design.md section 12). Wall time of the
LiRA part (the target's training excluded), speed-up and speed-up per worker, on Ray both
cold (its worker processes import torch first) and warm (a second run); the figures must be
the same. Run from the repository root (Ray's workers import the job from there).

The fan-out part (``--part fanout``): the independent mode's per-class training (the
product's ``train_model_job``: Fashion-MNIST classes 2-9, 2000 images each, on a
backbone pretrained briefly on 0-1) and an audit's
two retrain references (the reference and its twin of a digits model, 4 epochs, class 3
forgotten; ``audit_job`` without LiRA or relearn, each run on its own copy of the
workspace so nothing is cached), on the local worker and on a local Ray cluster of 2 CPUs,
cold and warm. Seconds (the independent mode: its training's own; the audit: its reference
stages, both references trained and scored; each job's wall time beside), speed-up, and
whether every stored artifact is the same bytes on both paths. The audit's "cold" run comes
after the independent mode's on the same cluster: only its job actor is new, its task
workers have imported torch already.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import auditlog, settings  # noqa: E402
from storage import requests as reqs  # noqa: E402
from storage.models import ClassEntry  # noqa: E402
from storage.registry import get_model  # noqa: E402
from storage.subject_key import subject_key  # noqa: E402
from storage.versions import NewModel, commit_forget, mark_unloadable, register_model  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.approvals import ensure_operator, passphrase_of  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "parallel.json"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(at(0.5), 3), "p95_ms": round(at(0.95), 3),
            "mean_ms": round(statistics.fmean(ordered), 3)}


def timed(ws: Workspace, count: int, step: Callable) -> list[float]:
    """Milliseconds of ``count`` write units, each running ``step(session, i)``."""
    samples = []
    for i in range(count):
        start = time.perf_counter()
        with ws.sessions.begin() as session:
            step(session, i)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def prepare(ws: Workspace, ops: int) -> list[int]:
    """An approver, a model of ``ops + 1`` classes and ``ops`` open requests."""
    key = subject_key(ws.keys_dir)
    with ws.sessions.begin() as session:
        settings.set_setting(session, "four_eyes", False, "admin")
        ensure_operator(session, "bob")
        names = {i: f"c{i}" for i in range(ops + 1)}
        register_model(session, NewModel("shop", "image", "vit", "full", {}, {}, "s" * 64,
                                         {i: f"{i:064x}" for i in names}, names, {}, "exact"),
                       "admin")
        return [reqs.create_request(session, model_name="shop", subject=f"ticket-{i}",
                                    legal_basis="GDPR Art. 17", operator="admin",
                                    subject_key=key, classes=[f"c{i}"]).id
                for i in range(ops)]


def forget_commit(session, request_id: int) -> None:  # noqa: ANN001
    """The registry side of a forget of the request's class (engine.forget._commit)."""
    request = reqs.get_request(session, request_id, lock=True)
    model = get_model(session, "shop")
    label = request.scope["classes"][0]["index"]
    entries = [c for c in model.classes if c.label_index == label]
    new, removed = commit_forget(session, model, entries, "bob", request, {})
    mark_unloadable(session, removed)
    reqs.mark_executed(session, request, "bob", "exact", {"version": new.number})


def measure(root: Path, ops: int) -> dict[str, dict[str, float]]:
    ws = Workspace.open(root)
    try:
        requests = prepare(ws, ops)
        append = timed(ws, ops, lambda s, i: auditlog.append(s, "bob", "bench.note", {"i": i}))
        approve = timed(ws, ops, lambda s, i: reqs.approve(s, requests[i], "bob",
                                                          passphrase_of("bob")))
        forget = timed(ws, ops, lambda s, i: forget_commit(s, requests[i]))
        with ws.sessions() as session:
            assert auditlog.verify(session).valid
            assert session.query(ClassEntry).filter_by(status="forgotten").count() == ops
        return {"log_append": percentiles(append), "approve": percentiles(approve),
                "forget_commit": percentiles(forget)}
    finally:
        ws.close()


def on_postgresql(url: str | None, root: Path, ops: int) -> tuple[dict, str]:
    from tests import pg

    server = None
    if url is None:
        server = pg.PostgresServer.start(durable=True)
        server.execute("CREATE DATABASE bench")
        url = server.url("bench")
    os.environ["UNPROMPT_DB_URL"] = url
    try:
        return measure(root, ops), ("throwaway local server, fsync on" if server else url)
    finally:
        del os.environ["UNPROMPT_DB_URL"]
        if server is not None:
            server.stop()


LIRA_JOB = "tests.gui.jobs_for_tests:tiny_lira"
LIRA_CONFIG = {"classes": list(range(10)), "max_per_class": 100, "epochs": 8,
               "overrides": {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}}


def drive(client, kwargs: dict) -> dict:  # noqa: ANN001
    """Run one job on an engine client to its end; its result."""
    job, value = client.submit(LIRA_JOB, kwargs), None
    while True:
        for event in client.poll():
            if event.job_id == job and event.kind == "error":
                raise RuntimeError(event.data["message"])
            if event.job_id == job and event.kind == "result":
                value = event.data["value"]
            if event.job_id == job and event.kind == "finished":
                return value
        time.sleep(0.05)


def lira(shadows: int, workers: int = 2) -> dict:
    """LiRA's wall time on the local worker and on a local Ray cluster of ``workers`` CPUs."""
    import ray

    from engine.ray_client import RayEngineClient
    from engine.worker import EngineClient

    kwargs = {"k": shadows, "timed": True, **LIRA_CONFIG}
    local_client = EngineClient()
    try:
        local = drive(local_client, kwargs)
    finally:
        local_client.close()
    os.nice(5)  # Ray's workers inherit it: the same priority as the local worker (it nices 5)
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    ray_client = RayEngineClient("auto")
    try:  # cold: Ray's worker processes import torch first; warm: a cluster already in use
        cold, on_ray = drive(ray_client, kwargs), drive(ray_client, kwargs)
    finally:
        ray_client.close()
        ray.shutdown()
    speedup = local["lira_s"] / on_ray["lira_s"]
    return {"shadows": shadows, "ray_workers": workers, "config": LIRA_CONFIG,
            "local_s": round(local["lira_s"], 2), "ray_cold_s": round(cold["lira_s"], 2),
            "ray_s": round(on_ray["lira_s"], 2), "speedup": round(speedup, 2),
            "speedup_cold": round(local["lira_s"] / cold["lira_s"], 2),
            "speedup_per_worker": round(speedup / workers, 2),
            "same_figures": local["metrics"] == on_ray["metrics"] == cold["metrics"]}


def drive_job(client, target: str, kwargs: dict,  # noqa: ANN001
              marks: list | None = None) -> tuple[dict, float]:
    """Run a registry job on an engine client to its end: its result and wall seconds;
    ``marks`` gets ``(seconds, message)`` of each progress record."""
    start = time.monotonic()
    job, value = client.submit(target, kwargs), None
    while True:
        for event in client.poll():
            if event.job_id == job and event.kind == "error":
                raise RuntimeError(event.data["message"])
            if event.job_id == job and event.kind == "progress" and marks is not None:
                marks.append((time.monotonic() - start, event.data["message"]))
            if event.job_id == job and event.kind == "result":
                value = event.data["value"]
            if event.job_id == job and event.kind == "finished":
                return value, time.monotonic() - start
        time.sleep(0.05)


BACKBONE = {"dataset": "fashion-mnist", "classes": ["0-1"], "epochs": 1, "max_per_class": 300,
            "device": "cpu"}  # declared non-erasable; its quality does not matter here
INDEPENDENT = {"dataset": "fashion-mnist", "mode": "independent", "classes": ["2-9"],
               "max_per_class": 2000, "device": "cpu", "backbone_from": "fm-0-1"}
REFERENCE = {"dataset": "digits", "epochs": 4, "device": "cpu"}
AUDIT = {"reference": True, "twin": True, "lira": 0, "relearn": False, "per_class": 50}


def fan_outs(workers: int = 2) -> dict:
    """The independent mode's classes and the audit's two retrain references, each run on
    the local worker and on a local Ray cluster of ``workers`` CPUs, cold then warm."""
    import shutil

    from engine.image_jobs import pretrain_backbone_job
    from engine.jobs import run_job
    from engine.worker import EngineClient

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "refs"
        audited = prepare_audit(base)
        roots = {run: Path(tmp) / run for run in ("local", "ray_cold", "ray")}
        for root in roots.values():
            shutil.copytree(base, root)
        indep = Path(tmp) / "indep"
        run_job(pretrain_backbone_job(indep, name="fm-0-1", operator="bench", **BACKBONE))
        out: dict = {"independent": {}, "references": {}}
        local = EngineClient()
        try:
            out["independent"]["local"] = train_independent(local, indep, "local")
            out["references"]["local"] = audit(local, roots["local"], audited)
        finally:
            local.close()
        with ray_cluster(workers) as ray_client:
            for run in ("ray_cold", "ray"):
                out["independent"][run] = train_independent(ray_client, indep, run)
                out["references"][run] = audit(ray_client, roots[run], audited)
        for part in out.values():
            part["same_bytes"] = len({json.dumps(r.pop("artifacts")) for r in part.values()}) == 1
            part["speedup"] = round(part["local"]["s"] / part["ray"]["s"], 2)
            part["speedup_cold"] = round(part["local"]["s"] / part["ray_cold"]["s"], 2)
            part["speedup_per_worker"] = round(part["speedup"] / workers, 2)
    return {"ray_workers": workers, "independent_config": INDEPENDENT, "backbone": BACKBONE,
            "reference_config": REFERENCE, "audit": AUDIT, **out}


def train_independent(client, root: Path, run: str) -> dict:  # noqa: ANN001
    """Train Fashion-MNIST 2-9 in the independent mode (docs/design.md section 17)."""
    result, wall = drive_job(client, "engine.image_jobs:train_model_job",
                             {"workspace": str(root), "name": f"indep-{run}",
                              "operator": "bench", **INDEPENDENT})
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            version = get_model(session, f"indep-{run}").versions[0]
            artifacts = [version.shared_artifact, dict(version.class_artifacts)]
    finally:
        ws.close()
    return {"s": round(result["seconds"], 2), "wall_s": round(wall, 2), "artifacts": artifacts}


def prepare_audit(root: Path) -> str:
    """A digits model with class 3 forgotten (trained in this process), ready to audit."""
    import torch

    from engine.forget import forget_job
    from engine.image_jobs import train_model_job
    from engine.jobs import run_job

    torch.set_num_threads(1)  # as the local worker on 2 cores
    run_job(train_model_job(root, name="digits", operator="bench", **REFERENCE))
    run_job(forget_job(root, model_name="digits", classes=["3"], operator="bench"))
    return "digits"


def audit(client, root: Path, name: str) -> dict:  # noqa: ANN001
    """An audit with the retrain reference and its twin (no LiRA, no relearn)."""
    from storage.models import AuditRun

    marks: list = []
    _, wall = drive_job(client, "engine.audit.job:audit_job",
                        {"workspace": str(root), "model_name": name, "operator": "bench",
                         **AUDIT}, marks)
    first = [t for t, m in marks if m.startswith("model:")][-1]  # the stage before
    after = next(t for t, m in marks if m.startswith("statistics:"))
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            runs = session.query(AuditRun).filter_by(kind="reference").order_by(AuditRun.id)
            artifacts = sorted([r.metrics["shared_artifact"], r.metrics["class_artifacts"]]
                               for r in runs)
            seconds = [r.metrics["seconds"] for r in runs]
    finally:
        ws.close()
    return {"s": round(after - first, 2), "wall_s": round(wall, 2),
            "train_s": [round(x, 2) for x in seconds], "artifacts": artifacts}


class ray_cluster:  # noqa: N801 - a context manager read as a phrase
    """A local Ray cluster of ``workers`` CPUs (niced like the local worker) and a client."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self):  # noqa: ANN204
        import ray

        from engine.ray_client import RayEngineClient

        if os.nice(0) < 5:
            os.nice(5 - os.nice(0))  # Ray's workers inherit it: the local worker nices 5
        ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                 logging_level="ERROR", log_to_driver=False)
        self.client = RayEngineClient("auto")
        return self.client

    def __exit__(self, *exc: object) -> None:
        import ray

        self.client.close()
        ray.shutdown()


def registry(ops: int, url: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = measure(Path(tmp) / "sqlite-ws", ops)
        postgresql, where = on_postgresql(url, Path(tmp) / "pg-ws", ops)
    for name, figures in (("SQLite", sqlite), ("PostgreSQL", postgresql)):
        for op, f in figures.items():
            print(f"{name:<11} {op:<14} p50 {f['p50_ms']:8.2f} ms   p95 {f['p95_ms']:8.2f} ms")
    return {"registry": {"sqlite": sqlite, "postgresql": postgresql},
            "postgresql_server": where, "ops": ops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("registry", "lira", "fanout", "all"), default="all")
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--url", help="a PostgreSQL database to use (its tables are created)")
    parser.add_argument("--shadows", type=int, default=8)
    args = parser.parse_args()
    os.environ.pop("UNPROMPT_DB_URL", None)
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(),
               "load_average_before": os.getloadavg()}
    if args.part in ("registry", "all"):
        result.update(registry(args.ops, args.url), machine=machine)
    if args.part in ("lira", "all"):
        result["lira"] = {**lira(args.shadows), "machine": machine}
        print(json.dumps(result["lira"]))
    if args.part in ("fanout", "all"):
        result["fanout"] = {**fan_outs(), "machine": {
            **machine, "load_average_after": os.getloadavg()}}
        print(json.dumps(result["fanout"], indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
