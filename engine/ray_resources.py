"""What a job and its pieces ask Ray for (docs/design.md section 12). No torch, no ray.

A job's actor asks for one GPU when the job's device is CUDA; a piece of a job that fans
out (``engine.ray_fanout``) asks for one CPU, and one GPU when the job's device is CUDA.
"""

from __future__ import annotations

from typing import Any

from engine.job_classes import LONG


def is_cuda(device: Any) -> bool:
    """Whether ``device`` (a name or a torch device) is a CUDA device."""
    return str(device or "cpu").lower().startswith("cuda")


def job_options(kwargs: dict[str, Any], lane: str, cluster_gpus: float) -> dict[str, Any]:
    """The actor of a job: one GPU when its device is CUDA (``cuda``, or ``auto`` for a long
    job) and the cluster has one. An interactive job (a forget) never waits for a GPU that
    long jobs hold; ``cuda`` on a cluster without a GPU asks for none, and the job fails
    naming the missing GPU (``engine.device``) instead of waiting for ever."""
    device = str(kwargs.get("device") or "auto").lower()
    wants = is_cuda(device) or (device == "auto" and lane == LONG)
    return {"num_gpus": 1} if wants and cluster_gpus >= 1 else {}


def task_options(device: Any = "cpu") -> dict[str, Any]:
    """One piece of a fan-out: a CPU, and a GPU when the job's device is CUDA."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
    if is_cuda(device):
        options["num_gpus"] = 1
    return options
