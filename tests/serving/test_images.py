"""Serving image models: KServe v2 infer (tensor and BYTES), multipart predict, metadata."""

from __future__ import annotations

import base64

from tests.serving.conftest import Served, png_bytes, tensor_body


def test_v2_infer_answers_over_the_live_classes_and_names_the_version(shared: Served) -> None:
    reply = shared.client.post("/v2/models/demo/infer", json={**tensor_body(3), "id": "r1"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model_name"] == "demo" and body["model_version"] == "1" and body["id"] == "r1"
    probs, top = body["outputs"]
    assert probs["name"] == "probabilities" and probs["shape"] == [3, 10]
    rows = [probs["data"][i * 10:(i + 1) * 10] for i in range(3)]
    assert all(abs(sum(row) - 1.0) < 1e-4 for row in rows)
    classes = body["parameters"]["classes"]
    assert classes == [str(i) for i in range(10)]
    assert top["data"] == [classes[max(range(10), key=row.__getitem__)] for row in rows]


def test_an_encoded_image_gives_the_same_answer_by_v2_bytes_and_by_multipart(
        shared: Served) -> None:
    image = png_bytes(seed=3)
    v2 = shared.client.post("/v2/models/demo/infer", json={"inputs": [{
        "name": "image", "shape": [1], "datatype": "BYTES",
        "data": [base64.b64encode(image).decode()]}]}).json()
    v1 = shared.client.post("/v1/models/demo/predict",
                            files={"file": ("x.png", image, "image/png")}).json()
    assert v1["version"] == 1 and v1["top_class"] == v2["outputs"][1]["data"][0]
    assert list(v1["probabilities"].values()) == v2["outputs"][0]["data"]


def test_a_larger_image_is_resized_like_the_training_data(shared: Served) -> None:
    reply = shared.client.post("/v1/models/demo/predict",
                               files={"file": ("x.png", png_bytes((40, 30)), "image/png")})
    assert reply.status_code == 200 and len(reply.json()["probabilities"]) == 10


def test_metadata_health_and_metrics(served: Served) -> None:
    meta = served.client.get("/v2/models/demo").json()
    assert meta["versions"] == ["1"] and meta["parameters"]["forgotten"] == []
    assert meta["inputs"][1]["shape"] == [-1, 1, 8, 8]
    assert served.client.get("/v2/health/ready").json()["ready"] is True
    served.client.post("/v2/models/demo/infer", json=tensor_body())
    text = served.client.get("/metrics").text
    assert 'unprompt_requests_total{route="/v2/models/{name}/infer",model="demo",' \
           'status="200"} 1' in text
    assert "unprompt_batch_size_count 1" in text and "unprompt_chat_flagged_total 0" in text
    assert 'unprompt_request_seconds_bucket{route="/v2/models/{name}/infer",le="+Inf"} 1' \
        in text
