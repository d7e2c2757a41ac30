"""Image routes: Open Inference Protocol v2 and a plain multipart predict (section 13).

A request takes the live version object once, when it starts, and is answered by it; the
response names that version. Probabilities cover the version's live classes only: a
forgotten class has no prompt, no head row and no column.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from serving.app import read_body, require, state_of
from serving.inputs import BadRequest, decode_image, parse_json, v2_input
from serving.models import ServedImage

router = APIRouter()
PREDICT = Depends(require("predict"))
INLINE_BYTES = 64 * 1024  # smaller inputs convert on the event loop (a thread hop costs more)


async def _off_loop(large: bool, call: Any, *args: Any) -> Any:
    """Large inputs convert in a worker thread so that they never stall the event loop."""
    return await run_in_threadpool(call, *args) if large else call(*args)


@router.get("/v2")
async def server_metadata() -> dict[str, Any]:
    return {"name": "unprompt", "version": "1", "extensions": ["unprompt-live-swap"]}


@router.get("/v2/health/live")
async def health_live() -> dict[str, Any]:
    return {"live": True}


@router.get("/v2/health/ready")
async def health_ready(request: Request) -> dict[str, Any]:
    live = state_of(request).live
    if live.generation < 0:
        raise BadRequest(503, "the registry has not been read yet")
    return {"ready": True, "models": sorted(live.images) + sorted(live.lms)}


@router.get("/v2/models/{name}", dependencies=[PREDICT])
async def model_metadata(request: Request, name: str) -> dict[str, Any]:
    served = served_image(request, name, allow_empty=True)
    size, channels, k = served.img_size, served.channels, len(served.class_ids)
    return {
        "name": name, "versions": [str(served.version)], "platform": "pytorch_torchscript",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                   {"name": "input", "datatype": "FP32", "shape": [-1, channels, size, size]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, k]},
                    {"name": "top_class", "datatype": "BYTES", "shape": [-1]}],
        "parameters": {"version": served.version, "classes": served.class_names,
                       "forgotten": list(served.spec.forgotten),
                       "input_range": [-1.0, 1.0], "loaded_at": served.loaded_at},
    }


@router.get("/v2/models/{name}/ready", dependencies=[PREDICT])
async def model_ready(request: Request, name: str) -> dict[str, Any]:
    served = served_image(request, name)
    return {"name": name, "ready": True, "version": served.version}


@router.post("/v2/models/{name}/infer", dependencies=[PREDICT])
async def infer(request: Request, name: str) -> JSONResponse:
    served = served_image(request, name)
    raw = await read_body(request)
    body = parse_json(raw)
    if "id" in body and not isinstance(body["id"], str):
        raise BadRequest(400, "id must be a string")
    x = await _off_loop(len(raw) > INLINE_BYTES, v2_input, body, served.img_size,
                        served.channels)
    probs = await state_of(request).batcher.submit(served, x)
    names = served.class_names
    top = [names[i] for i in probs.argmax(dim=-1).tolist()]
    out = {"model_name": name, "model_version": str(served.version),
           "outputs": [{"name": "probabilities", "datatype": "FP32",
                        "shape": list(probs.shape), "data": probs.flatten().tolist()},
                       {"name": "top_class", "datatype": "BYTES", "shape": [len(top)],
                        "data": top}],
           "parameters": {"version": served.version, "classes": names}}
    if "id" in body:
        out["id"] = body["id"]
    return JSONResponse(out)  # plain json.dumps: no per-float jsonable_encoder walk


@router.post("/v1/models/{name}/predict", dependencies=[PREDICT])
async def predict(request: Request, name: str) -> JSONResponse:
    served = served_image(request, name)
    data = await _uploaded_file(request)
    x = await _off_loop(len(data) > INLINE_BYTES, decode_image, data, served.img_size,
                        served.channels)
    probs = (await state_of(request).batcher.submit(served, x))[0].tolist()
    names = served.class_names
    best = max(range(len(probs)), key=probs.__getitem__)
    return JSONResponse({"model": name, "version": served.version, "top_class": names[best],
                         "probabilities": dict(zip(names, probs, strict=True))})


async def _uploaded_file(request: Request) -> bytes:
    from serving.inputs import MAX_IMAGE_BYTES

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES + 65536:
        raise BadRequest(413, f"the upload is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest(400, "send the image as multipart/form-data in the field 'file'")
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception:  # noqa: BLE001 - any multipart parse failure is the client's
        raise BadRequest(400, "the multipart body cannot be parsed") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BadRequest(400, "the form has no file field named 'file'")
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    await form.close()
    return data


def served_image(request: Request, name: str, allow_empty: bool = False) -> ServedImage:
    """The live version object of image model ``name``, or the 4xx/503 that says why not."""
    live = state_of(request).live
    served = live.images.get(name)
    if served is None:
        if name in live.unavailable:
            raise BadRequest(503, f"model {name!r} is not being served: "
                                  f"{live.unavailable[name]}; retry shortly")
        if name in live.lms:
            raise BadRequest(400, f"model {name!r} is a language model; use "
                                  "/v1/chat/completions")
        raise BadRequest(404, f"no image model named {name!r} is served")
    if not served.class_ids and not allow_empty:
        raise BadRequest(409, f"every class of model {name!r} was forgotten (version "
                              f"{served.version}); it has nothing left to predict")
    return served
