"""Beyond one machine (issue 21): registry operation latency on SQLite vs PostgreSQL.

    nice -n 5 python bench/parallel.py [--ops 40] [--url postgresql+psycopg://...]

Each backend gets a fresh registry with one image model of ``ops + 1`` classes, an approver
and ``ops`` open requests, then times, one operation per write unit as the product runs them:
``log append`` (one audit-log entry), ``approve`` (the real approval: passphrase check, which is
scrypt and the same on both backends, signed decision, log entry) and ``forget commit`` (the
registry transaction of a forget, docs/design.md section 4 step 2: version v+1, class
forgotten, purge marks, request executed, log entries; no model bytes). SQLite is the
workspace's own file (WAL, synchronous=FULL); PostgreSQL is ``--url`` or a throwaway local
server started from the system's binaries with fsync on (tests/pg.py). One client; the
figures are per operation. Writes bench/results/parallel.json. Not a test.

The LiRA part (8 shadow models, local worker vs a Ray cluster) is not written yet.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--url", help="a PostgreSQL database to use (its tables are created)")
    args = parser.parse_args()
    os.environ.pop("UNPROMPT_DB_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = measure(Path(tmp) / "sqlite-ws", args.ops)
        postgresql, where = on_postgresql(args.url, Path(tmp) / "pg-ws", args.ops)
    result = {"registry": {"sqlite": sqlite, "postgresql": postgresql},
              "postgresql_server": where, "ops": args.ops,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg()}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name, figures in (("SQLite", sqlite), ("PostgreSQL", postgresql)):
        for op, f in figures.items():
            print(f"{name:<11} {op:<14} p50 {f['p50_ms']:8.2f} ms   p95 {f['p95_ms']:8.2f} ms")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
