"""Request bodies to model input: decoded images and checked tensors (section 13).

Every problem is a ``BadRequest`` with an HTTP status and one sentence; nothing here touches
the workspace. Image size is checked from the header before any pixel is decoded, so a
100-megapixel (or decompression-bomb) image costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import warnings
from typing import Any

import numpy as np

MAX_BODY_BYTES = 16 * 2**20
MAX_IMAGE_BYTES = 8 * 2**20
MAX_PIXELS = 4096 * 4096
MAX_ITEMS = 64  # images or tensor rows in one request
FLOAT_TYPES = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


class BadRequest(Exception):
    """A client error: ``status`` and one readable sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or 400."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    return value


def decode_image(data: bytes, img_size: int, channels: int) -> Any:
    """One encoded image (PNG, JPEG, ...) as a normalised ``(1, C, S, S)`` tensor."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadRequest(400, "the image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise BadRequest(413, f"the image is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > MAX_PIXELS or width < 1 or height < 1:
                    raise BadRequest(413, f"the image is {width}x{height} pixels; at most "
                                          f"{MAX_PIXELS // 10**6} megapixels are accepted")
                img.load()
                grey = img.mode in ("1", "L", "I", "I;16", "F")
                pixels = np.array(img.convert("L" if grey else "RGB"))
    except BadRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(413, f"the image has more than {MAX_PIXELS // 10**6} megapixels"
                         ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError):
        raise BadRequest(400, "the image cannot be decoded (not a readable PNG, JPEG, ...)"
                         ) from None
    return _to_model_input(pixels[None], img_size, channels)


def _to_model_input(pixels: np.ndarray, img_size: int, channels: int) -> Any:
    from engine.datasets import match_channels, to_tensor

    return match_channels(to_tensor(pixels, 255.0, img_size), channels)


def decode_base64(text: Any) -> bytes:
    if isinstance(text, dict) and "b64" in text:
        text = text["b64"]
    if not isinstance(text, str):
        raise BadRequest(400, "a BYTES input must hold base64 strings (one encoded image each)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, "a BYTES element is not valid base64") from None


def tensor_input(spec: dict[str, Any], img_size: int, channels: int) -> Any:
    """A v2 tensor ``[N, C, S, S]`` (or one ``[C, S, S]``), already normalised to [-1, 1]."""
    import torch

    dtype = FLOAT_TYPES.get(str(spec.get("datatype", "")).upper())
    if dtype is None:
        raise BadRequest(400, f"datatype {spec.get('datatype')!r} is not accepted; send FP32 "
                              "(FP16 and FP64 also work) or BYTES images")
    shape = _shape(spec.get("shape"))
    want = (channels, img_size, img_size)
    if len(shape) == 3:
        shape = [1, *shape]
    if len(shape) != 4 or tuple(shape[1:]) != want or not 1 <= shape[0] <= MAX_ITEMS:
        raise BadRequest(400, f"shape {spec.get('shape')} does not fit this model: send "
                              f"[N, {channels}, {img_size}, {img_size}] with 1 <= N <= "
                              f"{MAX_ITEMS}")
    values = _numbers(spec.get("data"), dtype)
    if values.size != math.prod(shape):
        raise BadRequest(400, f"the data holds {values.size} numbers; shape {shape} needs "
                              f"{math.prod(shape)}")
    if not np.isfinite(values).all():
        raise BadRequest(400, "the data holds NaN or infinite values")
    return torch.from_numpy(values.astype(np.float32).reshape(shape))


def _shape(value: Any) -> list[int]:
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                         and v >= 0 for v in value)
    if not ok:
        raise BadRequest(400, "shape must be a list of non-negative integers")
    return list(value)


def _numbers(data: Any, dtype: Any) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(400, "data must be a list of numbers")
    try:
        values = np.asarray(data, dtype=dtype).ravel()
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(400, "data must be a (flat or nested) list of numbers") from None
    return values


def images_input(spec: dict[str, Any], img_size: int, channels: int) -> Any:
    """A v2 BYTES input: ``shape [N]``, ``data`` N base64-encoded images."""
    import torch

    data = spec.get("data")
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_ITEMS:
        raise BadRequest(400, f"a BYTES input needs 1 to {MAX_ITEMS} base64 images in data")
    if spec.get("shape") not in (None, [len(data)]):
        raise BadRequest(400, f"shape {spec.get('shape')} does not match {len(data)} images")
    return torch.cat([decode_image(decode_base64(d), img_size, channels) for d in data])


def v2_input(body: dict[str, Any], img_size: int, channels: int) -> Any:
    """The model input of a v2 infer request: exactly one input, a tensor or images."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest(400, "inputs must be a list with exactly one input object")
    spec = inputs[0]
    if str(spec.get("datatype", "")).upper() == "BYTES":
        return images_input(spec, img_size, channels)
    return tensor_input(spec, img_size, channels)
