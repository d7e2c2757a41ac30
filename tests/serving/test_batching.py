"""Micro-batching: concurrent requests share forward passes, capped, never across versions."""

from __future__ import annotations

import asyncio

import torch

from serving.batching import MicroBatcher


class Version:
    """A stand-in version object: probabilities from a fixed linear map, calls recorded."""

    def __init__(self, offset: float) -> None:
        self.offset, self.calls = offset, []

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        return torch.softmax(torch.stack([x.sum((1, 2, 3)), x.sum((1, 2, 3)) + self.offset],
                                         1), -1)


def _run(batcher: MicroBatcher, items: list[tuple[Version, torch.Tensor]]) -> list:
    async def go() -> list:
        try:
            return await asyncio.gather(*(batcher.submit(v, x) for v, x in items))
        finally:
            batcher.close()

    return asyncio.run(go())


def test_queued_requests_run_as_one_batch_and_each_gets_its_own_rows() -> None:
    sizes = []
    version = Version(1.0)
    xs = [torch.full((1, 1, 2, 2), float(i)) for i in range(5)]
    out = _run(MicroBatcher(32, 0.0, sizes.append), [(version, x) for x in xs])
    assert version.calls == [5] and sizes == [5]
    for x, probs in zip(xs, out, strict=True):
        assert torch.allclose(probs, version.predict(x))


def test_the_batch_is_capped() -> None:
    version = Version(0.0)
    _run(MicroBatcher(2, 0.0), [(version, torch.zeros(1, 1, 2, 2)) for _ in range(5)])
    assert version.calls == [2, 2, 1]


def test_requests_on_different_versions_are_never_batched_together() -> None:
    old, new = Version(0.0), Version(5.0)
    items = [(old, torch.zeros(1, 1, 2, 2)), (new, torch.zeros(1, 1, 2, 2)),
             (old, torch.ones(1, 1, 2, 2))]
    out = _run(MicroBatcher(32, 0.0), items)
    assert old.calls == [2] and new.calls == [1]
    assert torch.allclose(out[1], new.predict(torch.zeros(1, 1, 2, 2)))
