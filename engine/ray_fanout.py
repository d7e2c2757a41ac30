"""Fan-out of independent pieces of a job as parallel Ray tasks (docs/design.md section 12).

A job that runs inside a Ray worker (the Ray engine backend, ``engine.ray_client``) may
hand pieces that do not depend on each other (LiRA's shadow models, the audit's retrain
references, the independent mode's classes) to Ray as tasks, one CPU each, and one GPU
each when the job's device is CUDA; under the local worker ``fans_out()`` is False and the
job keeps its own loop. A piece never fans out again. The job stays a generator: a
progress record as each piece finishes, cancel checked while it waits (the pieces still
running are cancelled with it). No torch here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any

from engine.jobs import CancelToken, Progress
from engine.ray_resources import is_cuda, task_options

WAIT_S = 0.25
_inside_piece = False  # True while this process runs a piece (a Ray task of fan_out)


def in_ray() -> bool:
    """True inside a process connected to Ray (a Ray worker running a job)."""
    ray = sys.modules.get("ray")  # the local worker never imports ray
    return ray is not None and ray.is_initialized()


def fans_out(device: Any = "cpu") -> bool:
    """Whether a job hands its pieces to Ray here: connected to Ray, not itself a piece,
    and for CUDA pieces a cluster with a GPU besides the one this job holds (on a
    one-GPU cluster the pieces would wait for the job's own GPU for ever)."""
    if _inside_piece or not in_ray():
        return False
    if not is_cuda(device):
        return True
    import ray

    return ray.cluster_resources().get("GPU", 0.0) >= 2


def run_piece(function: Callable[..., Any], **kwargs: Any) -> Any:
    """One piece, run in a Ray task: ``function(**kwargs)``, never fanning out again."""
    global _inside_piece
    _inside_piece = True
    try:
        return function(**kwargs)
    finally:
        _inside_piece = False


def fan_out(function: Callable[..., Any], shared: dict[str, Any], each: Sequence[dict],
            label: str, cancel: CancelToken | None = None, device: Any = "cpu"
            ) -> Generator[Progress, None, list[Any]]:
    """``[function(**shared, **args) for args in each]``, run as parallel Ray tasks.

    ``shared`` (a dataset, a backbone's weights) goes to Ray's object store once."""
    import ray

    task = ray.remote(run_piece).options(**task_options(device))
    refs = {k: ray.put(v) for k, v in shared.items()}
    pending = [task.remote(function, **refs, **args) for args in each]
    index = {ref: i for i, ref in enumerate(pending)}
    results: list[Any] = [None] * len(pending)
    try:
        while pending:
            if cancel is not None:
                cancel.check()
            ready, pending = ray.wait(pending, num_returns=1, timeout=WAIT_S)
            for ref in ready:
                results[index[ref]] = ray.get(ref)
                done = len(each) - len(pending)
                yield Progress(done / len(each), f"{label} {done}/{len(each)} done",
                               {"parallel": True})
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
    return results
