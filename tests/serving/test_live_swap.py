"""Live swap: a forget reaches the server without a restart; no response that started after
the swap contains the forgotten class; every response names its version."""

from __future__ import annotations

import datetime as dt
import threading
import time

from engine.forget import forget_job
from engine.jobs import run_job
from storage import auditlog
from storage.workspace import Workspace
from tests.serving.conftest import Served, tensor_body, wait_until


def _drive(served: Served, stop: threading.Event, out: list) -> None:
    """Requests in a loop: (started, ended, version, classes) of each response."""
    import httpx

    with httpx.Client(base_url=served.server.url, timeout=30,
                      headers={"Authorization": f"Bearer {served.token}"}) as client:
        while not stop.is_set():
            started = time.time()
            body = client.post("/v2/models/demo/infer", json=tensor_body(2)).json()
            out.append((started, time.time(), int(body["model_version"]),
                        body["parameters"]["classes"], body["outputs"][0]["shape"]))


def _commit_time(root) -> float:  # noqa: ANN001
    ws = Workspace.open(root)
    with ws.sessions() as session:
        entry = auditlog.entries_of(session, ("model.forgotten",))[-1][0]
    ws.close()
    return dt.datetime.fromisoformat(entry.timestamp).replace(tzinfo=dt.UTC).timestamp()


def test_no_response_started_after_the_swap_contains_the_forgotten_class(served: Served
                                                                        ) -> None:
    responses: list = []
    stop = threading.Event()
    drivers = [threading.Thread(target=_drive, args=(served, stop, responses))
               for _ in range(2)]
    for t in drivers:
        t.start()
    live = served.server.live
    try:
        wait_until(lambda: responses, "a first response")
        run_job(forget_job(served.root, model_name="demo", classes=["3"], operator="alice"))
        committed = time.time()  # the forget has returned: its transaction is committed
        wait_until(lambda: live.images["demo"].version == 2, "the swap to version 2")
        seen = len(responses)
        wait_until(lambda: len(responses) >= seen + 6, "responses after the swap")
    finally:
        stop.set()
        for t in drivers:
            t.join()
    swap = next(s for s in live.swaps if s["model"] == "demo" and s["to"] == 2)
    assert swap["from"] == 1 and swap["at"] >= _commit_time(served.root) - 0.001
    after = [r for r in responses if r[0] > swap["at"]]
    assert after and all(v == 2 and "3" not in classes and shape[1] == 9
                         for _, _, v, classes, shape in after)
    assert all(started < swap["at"] for started, _, v, _, _ in responses if v == 1)
    # a request that starts after the commit waits for the swap, however late the poll
    assert all(v == 2 for started, _, v, _, _ in responses if started > committed)
    assert any(v == 1 for _, _, v, _, _ in responses)
    meta = served.client.get("/v2/models/demo").json()
    assert meta["parameters"]["forgotten"] == ["3"] and meta["versions"] == ["2"]


def test_a_model_that_cannot_load_is_taken_out_of_service(served: Served) -> None:
    """Never left on its old version: an unloadable new version answers 503, then recovers."""
    import shutil

    from storage.models import ModelVersion

    ws = Workspace.open(served.root)
    with ws.sessions() as session:
        v1 = session.query(ModelVersion).one()
        shared = v1.shared_artifact
    ws.close()
    path = served.root / "artifacts" / shared
    shutil.move(path, path.with_suffix(".away"))
    live = served.server.live
    with live._refreshing:  # as at start-up: nothing loaded yet, so the shared bytes are read
        live.images, live._retry = {}, True
    wait_until(lambda: "demo" in live.unavailable, "the failed load")
    reply = served.client.post("/v2/models/demo/infer", json=tensor_body())
    assert reply.status_code == 503 and "could not be loaded" in reply.json()["error"]
    shutil.move(path.with_suffix(".away"), path)
    wait_until(lambda: "demo" in live.images, "the model back in service")
    assert served.client.post("/v2/models/demo/infer", json=tensor_body()).status_code == 200


def test_a_request_after_a_commit_is_never_answered_from_before_it(ws_root) -> None:  # noqa: ANN001
    """With a poll that never comes (60 s), the request itself brings the swap about: a
    forgotten class and a revoked token are gone for every request that starts later."""
    import httpx

    from serving.server import BackgroundServer
    from storage import tokens
    from tests.serving.conftest import new_token

    token = new_token(ws_root, "slow-poll")
    with BackgroundServer(ws_root, poll_ms=60_000) as server:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{server.url}/v2/models/demo/infer"
        assert httpx.post(url, json=tensor_body(), headers=headers).json()["model_version"] == "1"
        run_job(forget_job(ws_root, model_name="demo", classes=["3"], operator="alice"))
        after = httpx.post(url, json=tensor_body(), headers=headers).json()
        assert after["model_version"] == "2" and "3" not in after["parameters"]["classes"]
        ws = Workspace.open(ws_root)
        with ws.sessions.begin() as session:
            tokens.revoke_token(session, "slow-poll", "alice")
        ws.close()
        assert httpx.post(url, json=tensor_body(), headers=headers).status_code == 401
