"""Artifact bytes for a pre-forgettable model (docs/design.md section 4, storage layout).

A model splits into one *shared* artifact (backbone incl. any LoRA weights, plus the
architecture config) and one small artifact per class (its ``prompt``, ``head`` row and
``deep`` adapter tokens). The shared artifact never depends on which classes exist, so
forgetting only drops class artifacts. All artifacts are safetensors: raw little-endian
tensor bytes, which is what the residual scan searches the workspace for.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import torch

from storage.errors import IntegrityError, UnpromptError

SHARED_FORMAT = "unprompt.pfm.shared/1"
CLASS_FORMAT = "unprompt.pfm.class/1"
BACKBONE_FORMAT = "unprompt.backbone/1"


def shared_bytes(model: Any) -> bytes:
    """The shared artifact: backbone tensors and the model config, no class tensors."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
    if hasattr(model, "shared_tensors"):  # the independent mode's pool (design section 17)
        state.update(model.shared_tensors())
    return save(state, metadata=_meta(SHARED_FORMAT, config=model.config))


def class_bytes(model: Any, class_id: int) -> bytes:
    """The artifact of one class: its prompt token, head row and adapter tokens."""
    from safetensors.torch import save

    tensors = {name: p.detach().cpu().contiguous()
               for name, p in model.class_parameters(class_id).items()}
    return save(tensors, metadata=_meta(CLASS_FORMAT, class_id=int(class_id)))


def split(model: Any) -> tuple[bytes, dict[int, bytes]]:
    """``(shared, {class_id: class artifact})`` for every remaining class."""
    return shared_bytes(model), {cid: class_bytes(model, cid) for cid in model.class_ids}


def assemble(shared: bytes, classes: Mapping[int, bytes]) -> Any:
    """Rebuild a model from the shared artifact and any subset of class artifacts."""
    from engine.independent import model_type

    meta, state = _load(shared, SHARED_FORMAT, "shared model artifact")
    config = meta["config"]
    model = model_type(config.get("mode"))([], **config)
    extra = {k: state.pop(k) for k in list(state) if k.startswith("independent.")}
    if hasattr(model, "load_shared_tensors"):
        model.load_shared_tensors(extra)
    elif extra:
        raise IntegrityError("The shared model artifact holds tensors its mode does not use.")
    try:
        model.backbone.load_state_dict(state, strict=True)
    except RuntimeError:
        raise IntegrityError("The shared model artifact does not match its own "
                             "architecture config.") from None
    for cid in sorted(classes):
        load_class(model, cid, classes[cid])
    model.set_trainable()
    return model.eval()


def load_class(model: Any, class_id: int, data: bytes) -> None:
    """Add class ``class_id`` to ``model`` with the tensors stored in ``data``."""
    meta, tensors = _load(data, CLASS_FORMAT, f"artifact of class {class_id}")
    if meta.get("class_id") != int(class_id):
        raise IntegrityError(f"The artifact given for class {class_id} belongs to class "
                             f"{meta.get('class_id')}.")
    model.add_class(class_id)
    owned = model.class_parameters(class_id)
    if set(tensors) != set(owned) or any(tensors[k].shape != owned[k].shape for k in owned):
        model.remove_classes([class_id])
        raise IntegrityError(f"The artifact of class {class_id} does not fit this model.")
    with torch.no_grad():
        for name, param in owned.items():
            param.copy_(tensors[name])


def class_tensor_fingerprints(data: bytes) -> list[bytes]:
    """The raw little-endian bytes of each tensor in a class artifact (for residual scans)."""
    header, base = _header(data)
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    return [data[base + start:base + end] for start, end in spans if end > start]


def backbone_bytes(state: Mapping[str, torch.Tensor], arch: Mapping[str, Any]) -> bytes:
    """A pretrained backbone (``pretrain_job``'s result) as one artifact."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return save(tensors, metadata=_meta(BACKBONE_FORMAT, arch=dict(arch)))


def load_backbone(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state, arch)`` from ``backbone_bytes``."""
    meta, state = _load(data, BACKBONE_FORMAT, "backbone artifact")
    return state, meta["arch"]


def _meta(fmt: str, **values: Any) -> dict[str, str]:
    """One metadata entry: safetensors orders several keys differently from call to call,
    which would make identical models produce different bytes (and hashes)."""
    return {"unprompt": json.dumps({"format": fmt, **values}, sort_keys=True)}


def _load(data: bytes, fmt: str, what: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load

    header, _ = _header(data, what)
    try:
        meta = json.loads((header.get("__metadata__") or {}).get("unprompt", "{}"))
    except ValueError:
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise IntegrityError(f"The {what} is not a {fmt} artifact.")
    try:
        return meta, load(data)
    except Exception:  # safetensors raises its own error types for damaged buffers
        raise IntegrityError(f"The {what} is damaged and cannot be read.") from None


def _header(data: bytes, what: str = "artifact") -> tuple[dict[str, Any], int]:
    """The safetensors JSON header and where the tensor data starts."""
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size])
    except (struct.error, ValueError):
        raise UnpromptError(f"The {what} is not a safetensors file.") from None
    if not isinstance(header, dict):
        raise UnpromptError(f"The {what} is not a safetensors file.")
    return header, 8 + size
