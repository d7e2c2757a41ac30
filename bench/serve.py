"""The inference server on loopback: throughput, latency, forget-to-serve, bad-request load.

Trains two small models (digits; Fashion-MNIST from /usr/share/datasets/fashion-mnist), starts
`main.py serve` as its own process, and drives it with an async HTTP client. Prints a table and
writes bench/results/serve.json. Bounded in requests and time; not part of the test run.
    python bench/serve.py [--requests 300] [--forgets 5] [--per-class 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY = {"epochs": 1, "augment": 0, "seed": 0,
        "overrides": {"embed_dim": 48, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}}
MODELS = {"digits": {"dataset": "digits", "patch_size": 4},
          "fashion": {"dataset": "fashion-mnist", "patch_size": 7}}
LEVELS = (1, 8, 32)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(latencies: list[float], seconds: float) -> dict:
    ms = [v * 1e3 for v in latencies]
    return {"requests": len(ms), "rps": round(len(ms) / seconds, 1),
            "p50_ms": round(pct(ms, 0.5), 2), "p95_ms": round(pct(ms, 0.95), 2),
            "p99_ms": round(pct(ms, 0.99), 2)}


def train(root: Path, per_class: int) -> None:
    from engine.image_jobs import train_model_job
    from engine.jobs import run_job

    for name, options in MODELS.items():
        run_job(train_model_job(root, name=name, operator="bench", max_per_class=per_class,
                                **TINY, **options))


def baseline(root: Path, name: str, n: int) -> dict:
    """The same live version called one request at a time in this process."""
    import torch

    from serving.live import LiveRegistry
    from storage.workspace import Workspace

    ws = Workspace.open(root)
    live = LiveRegistry(ws)
    live.refresh()
    served = live.images[name]
    x = torch.zeros(1, served.channels, served.img_size, served.img_size)
    served.predict(x)
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        served.predict(x)
        latencies.append(time.perf_counter() - t)
    result = summary(latencies, time.perf_counter() - started)
    ws.close()
    return result


def body(channels: int, size: int, n: int = 1) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "shape": [n, channels, size, size],
                                   "datatype": "FP32",
                                   "data": [0.0] * (n * channels * size * size)}]}).encode()


async def drive(url: str, token: str, bodies: list[tuple[bytes, bool]], concurrency: int,
                record: list | None = None) -> tuple[list[float], float, int]:
    """Send ``bodies`` (payload, good?) with ``concurrency`` keep-alive connections; latencies
    of the good ones. A minimal HTTP/1.1 client on asyncio streams: on a 2-core machine a
    full client library would cost more CPU than the server it measures."""
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    head = (f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    queue = list(reversed(bodies))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while queue:
            payload, good = queue.pop()
            started, t = time.time(), time.perf_counter()
            writer.write(head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            status, data, close = await _response(reader)
            elapsed = time.perf_counter() - t
            if good and status == 200:
                latencies.append(elapsed)
                if record is not None:
                    reply = json.loads(data)
                    record.append((started, int(reply["model_version"]),
                                   reply["parameters"]["classes"]))
            elif good or status < 400 or status >= 500:
                errors += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
        writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status = int((await reader.readline()).split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"connection" and b"close" in value.lower():
            close = True
    return status, await reader.readexactly(length), close


def start_server(root: Path, port: int, threads: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--workspace", str(root),
                                "serve", "--port", str(port), "--device", "cpu",
                                "--threads", str(threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start: " + process.stderr.read().decode()[-500:])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(url: str, token: str, name: str, shape: tuple[int, int], n: int,
               pid: int) -> dict:
    """Per concurrency level: client-side figures and the server's CPU time per request
    (what the server would cost on a machine it had to itself)."""
    out = {}
    payload = body(*shape)
    for level in LEVELS:
        count = n if level > 1 else max(50, n // 2)
        asyncio.run(drive(f"{url}/v2/models/{name}/infer", token, [(payload, True)] * 20, level))
        cpu = cpu_seconds(pid)
        lat, seconds, errors = asyncio.run(drive(f"{url}/v2/models/{name}/infer", token,
                                                 [(payload, True)] * count, level))
        out[str(level)] = {**summary(lat, seconds), "errors": errors,
                           "server_cpu_ms_per_request": round(
                               (cpu_seconds(pid) - cpu) / count * 1e3, 2)}
    return out


def forget_to_serve(root: Path, url: str, token: str, forgets: int) -> dict:
    """Clients at concurrency 8 while classes of 'digits' are forgotten one by one."""
    from engine.forget import forget_job
    from engine.jobs import run_job

    record: list = []
    stop = threading.Event()
    payload = body(1, 8)

    def clients() -> None:
        while not stop.is_set():
            asyncio.run(drive(f"{url}/v2/models/digits/infer", token, [(payload, True)] * 40,
                              8, record))

    thread = threading.Thread(target=clients)
    thread.start()
    events = []
    try:
        for cls in range(forgets):
            time.sleep(0.5)
            result = run_job(forget_job(root, model_name="digits", classes=[str(cls)],
                                        operator="bench"))
            events.append((str(cls), result["version"], _commit_time(root)))
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
    return _forget_figures(record, events)


def _commit_time(root: Path) -> float:
    import datetime as dt

    from storage import auditlog
    from storage.workspace import Workspace

    ws = Workspace.open(root)
    with ws.sessions() as session:
        entry = auditlog.entries_of(session, ("model.forgotten",))[-1][0]
    ws.close()
    return dt.datetime.fromisoformat(entry.timestamp).replace(tzinfo=dt.UTC).timestamp()


def _forget_figures(record: list, events: list, bound_s: float = 0.25) -> dict:
    """Per forget: from the commit to the first request after which every request that
    started got the new version; violations: forgotten class in a response started later
    than commit + bound."""
    delays, violations = [], 0
    for cls, _version, committed in events:
        stale = [start for start, _v, classes in record if cls in classes and start >= committed]
        fresh_from = max(stale, default=committed)
        delays.append((fresh_from - committed) * 1e3)
        violations += sum(1 for start in stale if start > committed + bound_s)
    return {"forgets": len(events), "responses": len(record),
            "forget_to_serve_ms": [round(d, 1) for d in delays],
            "p50_ms": round(pct(delays, 0.5), 1), "p95_ms": round(pct(delays, 0.95), 1),
            "bound_ms": bound_s * 1e3, "violations": violations}


def bad_mix(url: str, token: str, n: int) -> dict:
    """Concurrency 32 with 5% bad requests (malformed JSON, wrong shape, undecodable image)."""
    good = body(1, 8)
    bad = [b"{\"inputs\": [", body(3, 8),
           json.dumps({"inputs": [{"name": "i", "shape": [1], "datatype": "BYTES",
                                   "data": ["bm90IGFuIGltYWdl"]}]}).encode()]
    mixed = [(bad[i % 3], False) if i % 20 == 19 else (good, True) for i in range(n)]
    clean = [(good, True)] * n
    target = f"{url}/v2/models/digits/infer"
    lat_clean, s_clean, _ = asyncio.run(drive(target, token, clean, 32))
    lat_mixed, s_mixed, errors = asyncio.run(drive(target, token, mixed, 32))
    return {"clean": summary(lat_clean, s_clean),
            "with_5pct_bad": {**summary(lat_mixed, s_mixed), "bad_sent": n // 20,
                              "unexpected_status": errors}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--forgets", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--port", type=int, default=18321)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, in-process and in the server alike")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    from storage import tokens
    from storage.workspace import Workspace

    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        train(root, args.per_class)
        ws = Workspace.open(root)
        with ws.sessions.begin() as session:
            token, _ = tokens.create_token(session, "bench", "predict", "bench")
        ws.close()
        results: dict = {"torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                         "per_class": args.per_class, "models": MODELS, "arch": TINY}
        shapes = {"digits": (1, 8), "fashion": (1, 28)}
        results["in_process"] = {m: baseline(root, m, args.requests) for m in MODELS}
        server = start_server(root, args.port, args.threads)
        url = f"http://127.0.0.1:{args.port}"
        try:
            results["server"] = {m: throughput(url, token, m, shapes[m], args.requests,
                                            server.pid) for m in MODELS}
            results["bad_requests"] = bad_mix(url, token, args.requests)
            results["forget_to_serve"] = forget_to_serve(root, url, token, args.forgets)
            import httpx

            results["metrics_tail"] = [line for line in httpx.get(f"{url}/metrics").text
                                       .splitlines() if line.startswith(
                                           ("unprompt_batch_size_sum", "unprompt_batch_size_count",
                                            "unprompt_swaps_total"))]
        finally:
            server.terminate()
            server.wait(10)
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["seconds"] = round(time.time() - started, 1)
    print_table(results)
    out = ROOT / "bench" / "results" / "serve.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(out)


def print_table(r: dict) -> None:
    print("| model | path | concurrency | req/s | p50 ms | p95 ms | p99 ms | server CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for model in MODELS:
        b = r["in_process"][model]
        print(f"| {model} | in-process, one at a time | 1 | {b['rps']} | {b['p50_ms']} | "
              f"{b['p95_ms']} | {b['p99_ms']} | |")
        for level, s in r["server"][model].items():
            print(f"| {model} | server (HTTP, KServe v2) | {level} | {s['rps']} | {s['p50_ms']} |"
                  f" {s['p95_ms']} | {s['p99_ms']} | {s['server_cpu_ms_per_request']} |")
    f = r["forget_to_serve"]
    print(f"forget-to-serve over {f['forgets']} forgets: p50 {f['p50_ms']} ms, p95 "
          f"{f['p95_ms']} ms; violations after {f['bound_ms']:.0f} ms: {f['violations']} "
          f"({f['responses']} responses)")
    c, m = r["bad_requests"]["clean"], r["bad_requests"]["with_5pct_bad"]
    print(f"concurrency 32, digits: clean p95 {c['p95_ms']} ms; with 5% bad p95 {m['p95_ms']} ms "
          f"({m['unexpected_status']} unexpected statuses)")
    print(f"load average before {r['load_average']['before']}, after "
          f"{r['load_average']['after']}; {r['seconds']} s")


if __name__ == "__main__":
    main()
