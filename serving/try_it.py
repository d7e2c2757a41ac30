"""'Try it' on the Models screen: the live version's prediction for one image (section 13).

A worker job (the GUI never imports torch): a test image from the model's recorded split, or
an image file, through the live version exactly as the server converts it; the result says
the image's true class and whether that class was forgotten, so the screen can show that a
forgotten class is no longer among the answers.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from engine.image_jobs import cached_reference
from engine.model_store import image_model, load_live
from storage.errors import UnpromptError
from storage.workspace import Workspace


def try_image_job(workspace: str | Path, *, model_name: str, index: int | None = None,
                  seed: int = 0, path: str | None = None) -> dict[str, Any]:
    """Predict test image ``index`` (a seeded random one when None), or the file ``path``."""
    ws = Workspace.open(workspace)
    try:
        model, info = load_live(ws, model_name)
        forgotten = _forgotten(ws, model_name)
        if path is not None:
            x, true_class, index = _file_input(Path(path), model.config), None, None
        else:
            x, true_class, index = _test_input(info, index, seed)
        probs = _predict(model, x)
        names = info["class_names"]
        classes = [names.get(c, str(c)) for c in model.class_ids]
        top = classes[max(range(len(probs)), key=probs.__getitem__)] if probs else None
        return {"model": model_name, "version": info["version"], "index": index,
                "path": path, "true_class": true_class,
                "true_class_forgotten": true_class in forgotten, "forgotten": forgotten,
                "probabilities": dict(zip(classes, probs, strict=True)), "top_class": top,
                "png": _png(x)}
    finally:
        ws.close()


def _forgotten(ws: Workspace, model_name: str) -> list[str]:
    with ws.sessions() as session:
        return [c.display_name for c in image_model(session, model_name).classes
                if c.status == "forgotten"]


def _test_input(info: dict[str, Any], index: int | None, seed: int) -> tuple[Any, str, int]:
    import torch

    data = cached_reference(info["dataset"])
    count = len(data.test_y)
    if index is None:
        index = int(torch.randint(count, (1,), generator=torch.Generator().manual_seed(seed)))
    if not 0 <= index < count:
        raise UnpromptError(f"there is no test image {index}; the test split has {count}")
    label = int(data.test_y[index])
    return data.test_x[index:index + 1].float(), info["class_names"].get(label, str(label)), index


def _file_input(path: Path, config: dict[str, Any]) -> Any:
    from serving.inputs import BadRequest, decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnpromptError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return decode_image(data, int(config["img_size"]), int(config["in_chans"]))
    except BadRequest as exc:
        raise UnpromptError(f"{path.name}: {exc.message}") from None


def _predict(model: Any, x: Any) -> list[float]:
    import torch

    with torch.inference_mode():
        logits = model(x)
    return torch.softmax(logits.float(), -1)[0].tolist() if logits.shape[1] else []


def _png(x: Any) -> str:
    """The model's input as a PNG (base64), upscaled so an 8x8 digit is visible."""
    import numpy as np
    from PIL import Image

    pixels = ((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else np.ascontiguousarray(
        pixels))
    scale = max(1, 112 // max(image.size))
    out = io.BytesIO()
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()
