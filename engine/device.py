"""Which torch device a job runs on, and the one place tensors cross to and from it
(docs/design.md section 9: CUDA when available, else CPU; section 16: the device path).

``to_device`` and ``to_host`` are the only crossings a job makes. ``meta`` is a dry-run
device for tests: every op still checks that its tensors share a device (the check CUDA
makes), no numbers exist, and ``to_host`` reads zeros, so a job's device handling runs
end to end on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from storage.errors import UnpromptError

DEVICES = ("auto", "cpu", "cuda")
DRY_RUN = "meta"  # not offered to users (DEVICES); tests run jobs on it


def resolve_device(name: Any = "auto") -> Any:
    """``'auto'`` -> CUDA if present else CPU; ``'cuda'`` without a GPU is an error."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name in ("cpu", DRY_RUN):
        return torch.device(name)
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UnpromptError("CUDA was requested but no CUDA GPU is available; "
                                "use --device cpu or auto.")
        return torch.device(name)
    raise UnpromptError(f"Unknown device {name!r}; choose one of: {', '.join(DEVICES)}.")


def device_description(device: Any = None) -> str:
    """'CPU' or the GPU's name, for job records and the GUI."""
    import torch

    device = resolve_device("auto") if device is None else torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU" if device.type == "cpu" else device.type


def to_device(tensor: Any, device: Any) -> Any:
    """A host tensor on the job's device: pinned and asynchronous towards a GPU."""
    import torch

    device = torch.device(device)
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_host(tensor: Any) -> Any:
    """A device tensor's values on the CPU (a dry run reads zeros)."""
    import torch

    if tensor.device.type == DRY_RUN:
        return torch.zeros(tensor.shape, dtype=tensor.dtype)
    return tensor.detach().cpu()


def model_device(model: Any) -> Any:
    """The device a model's parameters live on (CPU for a model without any)."""
    import torch

    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def module_to_host(model: Any) -> Any:
    """A model back on the CPU; after a dry run its tensors exist again, zero-filled."""
    if model_device(model).type == DRY_RUN:
        model.to_empty(device="cpu")
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data.zero_()
        return model
    return model.cpu()


@contextlib.contextmanager
def on_device(model: Any, device: Any) -> Iterator[Any]:
    """Run ``model`` on ``device`` for a block, then put it back where it was."""
    home = model_device(model)
    model.to(device)
    try:
        yield model
    finally:
        if model_device(model).type == DRY_RUN and home.type != DRY_RUN:
            module_to_host(model).to(home)
        else:
            model.to(home)


def autocast(device: Any) -> Any:
    """bf16 autocast on a GPU that supports it; full precision everywhere else."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
