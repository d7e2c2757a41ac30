"""Micro-batching of concurrent image requests (docs/design.md section 13).

Requests queue ``(model object, input rows, future)``; one task takes what is queued, waits
at most ``max_wait_s`` for more while other requests are still being read, caps the batch at
``max_batch`` rows, and runs one forward pass per model object on a single inference thread.
A request is batched only with requests that hold the same version object, so every
response comes from the version its request started with. A lone request never waits.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class _Item:
    served: Any
    x: Any
    future: asyncio.Future


class MicroBatcher:
    """Groups concurrent ``submit`` calls into batched forward passes."""

    def __init__(self, max_batch: int = 32, max_wait_s: float = 0.002,
                 on_batch: Callable[[int], None] | None = None,
                 inline_s: float = 0.005) -> None:
        self.max_batch, self.max_wait_s, self.inline_s = max_batch, max_wait_s, inline_s
        # a version whose forward pass takes under inline_s runs on the event loop: handing
        # it to the inference thread and back costs more than the pass on a busy machine
        self._seconds: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.on_batch = on_batch or (lambda _n: None)
        self.inflight = 0  # image requests inside the app (counted by serving.app.Measured)
        self.waiting = 0  # of those, submitted and not yet answered
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unprompt-infer")

    async def submit(self, served: Any, x: Any) -> Any:
        """Probabilities for the rows of ``x`` from ``served`` (awaits its batch)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self.waiting += 1
        try:
            await self._queue.put(_Item(served, x, future))
            return await future
        finally:
            self.waiting -= 1

    @property
    def arriving(self) -> int:
        """Image requests being read that will submit soon."""
        return self.inflight - self.waiting

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._collect()
            for group in _by_model(batch):
                await self._forward(group)

    async def _collect(self) -> list[_Item]:
        queue = self._queue
        batch = [await queue.get()]
        rows = len(batch[0].x)
        if self.max_wait_s > 0:
            for _ in range(3):  # let requests whose bytes arrived during the last pass start
                await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while rows < self.max_batch:
            if queue.empty():
                left = deadline - asyncio.get_running_loop().time()
                if self.arriving <= 0 or left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            batch.append(item)
            rows += len(item.x)
        return batch

    async def _forward(self, group: list[_Item]) -> None:
        import torch

        served = group[0].served
        x = torch.cat([item.x for item in group]) if len(group) > 1 else group[0].x
        self.on_batch(len(x))
        try:
            probs = await self._predict(served, x)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in group:
            if not item.future.done():
                item.future.set_result(probs[start:start + len(item.x)])
            start += len(item.x)


    async def _predict(self, served: Any, x: Any) -> Any:
        started = time.perf_counter()
        if self._seconds.get(served, float("inf")) < self.inline_s:
            probs = served.predict(x)
        else:
            probs = await asyncio.get_running_loop().run_in_executor(
                self._executor, served.predict, x)
        seconds = time.perf_counter() - started
        old = self._seconds.get(served, seconds)
        self._seconds[served] = 0.8 * old + 0.2 * seconds  # a pass's time, smoothed
        return probs


def _by_model(batch: list[_Item]) -> list[list[_Item]]:
    """Items grouped by the version object they hold, in arrival order."""
    groups: dict[int, list[_Item]] = {}
    for item in batch:
        groups.setdefault(id(item.served), []).append(item)
    return list(groups.values())
