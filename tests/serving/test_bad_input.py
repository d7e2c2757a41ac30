"""Bad input: a 4xx with a JSON error body, the server keeps serving, the workspace unchanged."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import pytest

from storage import auditlog
from storage.models import Model
from storage.versions import NewModel, register_model
from storage.workspace import Workspace
from tests.serving.conftest import Served, png_bytes, tensor_body, wait_until


def _state(root: Path) -> tuple:
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            head = auditlog.head_hash(session)
        files = sorted((p.name, p.stat().st_size) for p in (root / "artifacts").iterdir())
        return head, files
    finally:
        ws.close()


def huge_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (100 megapixels): only the
    header is real, as in a decompression-bomb attack; a decoder would allocate it all."""
    small = png_bytes((8, 8))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return small[:8] + struct.pack(">I", 13) + chunk + \
        struct.pack(">I", zlib.crc32(chunk)) + small[33:]


def _image_input(data: bytes) -> dict:
    return {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                        "data": [base64.b64encode(data).decode()]}]}


BAD_V2 = [
    ("malformed JSON", b"{\"inputs\": [", 400),
    ("not an object", b"[1, 2]", 400),
    ("no inputs", b"{}", 400),
    ("wrong shape", {"inputs": [{"name": "x", "shape": [1, 3, 8, 8], "datatype": "FP32",
                                 "data": [0.0] * 192}]}, 400),
    ("wrong count", {"inputs": [{"name": "x", "shape": [1, 1, 8, 8], "datatype": "FP32",
                                 "data": [0.0] * 63}]}, 400),
    ("wrong dtype", {"inputs": [{"name": "x", "shape": [1, 1, 8, 8], "datatype": "INT8",
                                 "data": [0] * 64}]}, 400),
    ("strings as numbers", {"inputs": [{"name": "x", "shape": [1, 1, 8, 8],
                                        "datatype": "FP32", "data": ["a"] * 64}]}, 400),
    ("NaN", {"inputs": [{"name": "x", "shape": [1, 1, 8, 8], "datatype": "FP64",
                         "data": [float("nan")] * 64}]}, 400),
    ("too many rows", tensor_body(65), 400),
    ("not base64", {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES",
                                "data": ["@@@"]}]}, 400),
    ("undecodable image", _image_input(b"\x89PNG\r\n\x1a\n not really"), 400),
    ("100-megapixel image", _image_input(huge_png()), 413),
]


@pytest.mark.parametrize("what,body,status", BAD_V2, ids=[b[0] for b in BAD_V2])
def test_bad_v2_requests_get_a_json_4xx(shared: Served, what: str, body, status: int
                                        ) -> None:
    import json

    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = shared.client.post("/v2/models/demo/infer", content=content,
                               headers={"Content-Type": "application/json"})
    assert reply.status_code == status, (what, reply.text)
    assert isinstance(reply.json()["error"], str) and reply.json()["error"]


def test_bad_requests_leave_the_server_serving_and_the_workspace_unchanged(
        served: Served) -> None:
    before = _state(served.root)
    client = served.client
    replies = [
        client.post("/v1/models/demo/predict", files={"file": ("x.png", b"junk", "image/png")}),
        client.post("/v1/models/demo/predict", files={"file": ("x.png", huge_png(),
                                                                 "image/png")}),
        client.post("/v1/models/demo/predict", files={"other": ("x.png", png_bytes(), "")}),
        client.post("/v1/models/demo/predict", content=b"raw bytes"),
        client.post("/v2/models/nope/infer", json=tensor_body()),
        client.get("/v2/models/nope"),
        client.post("/v2/models/demo/infer", content=b"x" * (17 * 2**20)),
    ]
    assert [r.status_code for r in replies] == [400, 413, 400, 400, 404, 404, 413]
    assert all(isinstance(r.json()["error"], str) and r.json()["error"] for r in replies)
    assert client.post("/v2/models/demo/infer", json=tensor_body()).status_code == 200
    assert _state(served.root) == before


def test_a_model_with_every_class_forgotten_is_refused_with_409(served: Served) -> None:
    ws = Workspace.open(served.root)
    with ws.sessions.begin() as session:
        demo = session.query(Model).filter_by(name="demo").one()
        register_model(session, NewModel(
            name="empty", kind="image", backbone=demo.backbone, mode=demo.training_mode,
            dataset_ref=dict(demo.dataset_ref), config=dict(demo.config),
            shared_artifact=demo.versions[0].shared_artifact, class_artifacts={},
            class_names={}, metrics={}, erasure_kind="exact"), "alice")
    ws.close()
    live = served.server.live
    wait_until(lambda: "empty" in live.images, "the new model")
    reply = served.client.post("/v2/models/empty/infer", json=tensor_body())
    assert reply.status_code == 409 and "forgotten" in reply.json()["error"]
    assert served.client.get("/v2/models/empty").json()["outputs"][0]["shape"] == [-1, 0]
    assert served.client.post("/v2/models/demo/infer", json=tensor_body()).status_code == 200
