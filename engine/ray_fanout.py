"""Fan-out of independent pieces of a job as parallel Ray tasks (docs/design.md section 12).

A job that runs inside a Ray worker (the Ray engine backend, ``engine.ray_client``) may
hand pieces that do not depend on each other (LiRA's shadow models) to Ray as tasks, one
CPU each; under the local worker ``in_ray()`` is False and the job keeps its own loop. The
job stays a generator: a progress record as each piece finishes, cancel checked while it
waits (the pieces still running are cancelled with it). No torch here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any

from engine.jobs import CancelToken, Progress

WAIT_S = 0.25


def in_ray() -> bool:
    """True inside a process connected to Ray (a Ray worker running a job)."""
    ray = sys.modules.get("ray")  # the local worker never imports ray
    return ray is not None and ray.is_initialized()


def fan_out(function: Callable[..., Any], shared: dict[str, Any], each: Sequence[dict],
            label: str, cancel: CancelToken | None = None
            ) -> Generator[Progress, None, list[Any]]:
    """``[function(**shared, **args) for args in each]``, run as parallel Ray tasks.

    ``shared`` (a dataset, a backbone's weights) goes to Ray's object store once."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=0)(function)
    refs = {k: ray.put(v) for k, v in shared.items()}
    pending = [task.remote(**refs, **args) for args in each]
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
