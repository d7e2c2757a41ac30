"""Which torch device a job runs on (docs/design.md section 9: CUDA when available, else CPU)."""

from __future__ import annotations

from typing import Any

from storage.errors import UnpromptError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> Any:
    """``'auto'`` -> CUDA if present else CPU; ``'cuda'`` without a GPU is an error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
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
    return "CPU"
