"""A dataset's images stored compactly and read as float batches (docs/design.md section 16).

``Images`` holds ``(N, C, H, W)`` pixels as uint8 (a quarter of float32's memory), in
memory or in an on-disk cache (``engine.image_cache``), and is the one batch source every
job reads: ``batches`` turns rows into normalised floats (``x / scale * 2 - 1``) one batch
at a time on the job's device, the uint8 bytes crossing to it pinned. Indexing gives a
lazy subset of rows, so a selection of a streamed dataset reads nothing until it is used.
A float tensor (a few images, already normalised) is held as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.device import to_device

RESIZE_CHUNK = 1024  # images resized and quantised together (bounds the float copy)


class Images:
    """Rows of stored images: a torch tensor (uint8 or float) or a uint8 ``np.memmap``."""

    def __init__(self, data: Any, scale: float | None = None, rows: np.ndarray | None = None,
                 path: Path | None = None, workers: int = 0) -> None:
        self.data = data
        self.scale = scale  # None: ``data`` holds normalised floats
        self.rows = rows
        self.path = path  # the cache file behind a memmap
        self.workers = workers

    # ------------------------------------------------------------ shape and subsets
    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *tuple(int(d) for d in self.data.shape[1:]))

    def __len__(self) -> int:
        return len(self.data) if self.rows is None else len(self.rows)

    @property
    def streamed(self) -> bool:
        return self.path is not None

    @property
    def nbytes(self) -> int:
        """Bytes one copy of these rows takes where they are stored."""
        item = 1 if self.scale is not None else 4
        return int(np.prod(self.shape, dtype=np.int64)) * item

    def __getitem__(self, key: Any) -> Images:
        local = _row_index(key, len(self))
        rows = local if self.rows is None else self.rows[local]
        return Images(self.data, self.scale, rows, self.path, self.workers)

    # ------------------------------------------------------------ reading
    def read(self, local: np.ndarray | None = None) -> Any:
        """The stored values of rows ``local`` (all by default) as a host tensor."""
        import torch

        rows = self._absolute(local)
        if isinstance(self.data, np.ndarray):
            return torch.from_numpy(_gather(self.data, rows))
        return self.data if rows is None else self.data.index_select(0, torch.from_numpy(rows))

    def float(self) -> Any:
        """All rows as one normalised float tensor on the host (for small subsets)."""
        return self.normalise(self.read())

    def split(self, size: int) -> Iterator[Any]:
        """Consecutive float batches on the host, in order."""
        for start in range(0, len(self), size):
            yield self.normalise(self.read(np.arange(start, min(start + size, len(self)))))

    def batches(self, order: Sequence[Any], device: Any) -> Iterator[Any]:
        """The float batch of each index set in ``order`` on ``device``, in that order;
        a streamed source reads ahead in ``workers`` DataLoader processes."""
        if self.streamed and self.workers > 0:
            yield from self._loader_batches(order, device)
            return
        for idx in order:
            yield self.normalise(to_device(self.read(_as_numpy(idx)), device))

    def normalise(self, raw: Any) -> Any:
        """Stored values to floats in [-1, 1], where they are (on the device for a batch);
        in place on the new float copy (the same rounding as ``x / scale * 2 - 1``)."""
        if self.scale is None:
            return raw.float()
        return raw.float().div_(self.scale).mul_(2).sub_(1)

    def _loader_batches(self, order: Sequence[Any], device: Any) -> Iterator[Any]:
        import torch
        from torch.utils.data import DataLoader

        pin = torch.device(device).type == "cuda"
        loader = DataLoader(_RowReader(self), sampler=[_as_numpy(i) for i in order],
                            batch_size=None, num_workers=self.workers, pin_memory=pin,
                            prefetch_factor=4)
        for raw in loader:
            yield self.normalise(to_device(raw, device))

    def _absolute(self, local: np.ndarray | None) -> np.ndarray | None:
        if local is None:
            return None if self.rows is None else self.rows
        return local if self.rows is None else self.rows[local]

    # ------------------------------------------------------------ pickling (workers, Ray)
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.streamed:  # reopen the cache file instead of copying its bytes
            state["data"] = tuple(self.data.shape)
        elif self.rows is not None:  # a subset travels as its own rows only
            state["data"], state["rows"] = self.read(), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.streamed:
            self.data = np.memmap(self.path, dtype=np.uint8, mode="r", shape=state["data"])

    @staticmethod
    def cat(parts: Sequence[Images]) -> Images:
        """One in-memory source of several (floats where their scales differ)."""
        import torch

        scales = {p.scale for p in parts}
        if len(scales) == 1:
            return Images(torch.cat([p.read() for p in parts]), scales.pop())
        return Images(torch.cat([p.float() for p in parts]))


class _RowReader:
    """A map-style dataset whose key is a whole batch of rows (one read per batch)."""

    def __init__(self, images: Images) -> None:
        self.images = images

    def __getitem__(self, rows: np.ndarray) -> Any:
        return self.images.read(rows)

    def __len__(self) -> int:
        return len(self.images)


def as_images(x: Any) -> Images:
    """``x`` as a batch source: an ``Images`` as it is, a float tensor held as floats."""
    return x if isinstance(x, Images) else Images(x)


def in_order(count: int, size: int) -> list[np.ndarray]:
    """Index sets of consecutive batches (evaluation order)."""
    return [np.arange(s, min(s + size, count)) for s in range(0, count, size)]


def default_workers() -> int:
    """DataLoader processes for a streamed source: none below 3 cores (on 2 loaded cores one
    worker delivered 2.6x fewer images than reading inline, bench/stream.py), else the
    cores beside two, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def _row_index(key: Any, count: int) -> np.ndarray:
    if isinstance(key, slice):
        return np.arange(count)[key]
    arr = _as_numpy(key)
    if arr.dtype == bool:
        if len(arr) != count:
            raise IndexError(f"a mask of {len(arr)} rows for {count} images")
        return np.flatnonzero(arr)
    arr = arr.astype(np.int64).reshape(-1)
    return np.where(arr < 0, arr + count, arr)


def _as_numpy(key: Any) -> np.ndarray:
    if hasattr(key, "numpy"):
        return key.detach().cpu().numpy()
    return np.asarray(key)


def _gather(data: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """Rows of an on-disk array, read in file order (sequential reads), returned in ``rows``
    order."""
    if rows is None:
        return np.array(data)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *data.shape[1:]), dtype=data.dtype)
    out[order] = data[rows[order]]
    return out


# ---------------------------------------------------------------- decoding to uint8

def quantised_scale(images: Any, max_value: float, img_size: int | None) -> float:
    """The scale stored uint8 values keep: the source's own where they are exact bytes,
    else 255 (resized or non-integer pixels are quantised)."""
    same = img_size is None or tuple(images.shape[1:3]) == (img_size, img_size)
    exact = same and max_value <= 255 and (
        getattr(images, "dtype", None) == np.uint8 or _integral(images))
    return float(max_value) if exact else 255.0


def _integral(images: Any) -> bool:
    arr = np.asarray(images[:0]) if not isinstance(images, np.ndarray) else images
    return bool(arr.dtype.kind in "iu" or np.all(np.mod(arr, 1) == 0))


def write_uint8(out: Any, images: Any, rows: np.ndarray, max_value: float,
                img_size: int | None, scale: float) -> None:
    """Decode ``images[rows]`` (``(N, H, W[, C])``) into ``out`` (``(N, C, H, W)`` uint8,
    in memory or on disk) at ``img_size``, a chunk at a time."""
    for start in range(0, len(rows), RESIZE_CHUNK):
        part = np.asarray(images[rows[start:start + RESIZE_CHUNK]])
        out[start:start + len(part)] = chunk_uint8(part, max_value, img_size, scale)


def chunk_uint8(part: np.ndarray, max_value: float, img_size: int | None,
                scale: float) -> np.ndarray:
    """One chunk to ``(n, C, H, W)`` uint8 at ``scale``: resized (antialiased bilinear on
    the normalised floats, as before) and rounded where it must be."""
    import torch
    import torch.nn.functional as F

    nchw = part[:, None] if part.ndim == 3 else part.transpose(0, 3, 1, 2)
    resize = img_size is not None and tuple(nchw.shape[-2:]) != (img_size, img_size)
    if not resize and scale == max_value:
        return np.ascontiguousarray(nchw, dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(nchw)).float() / max_value * 2 - 1
    if resize and len(x):
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear",
                          align_corners=False, antialias=True).clamp_(-1, 1)
    return ((x + 1) * (scale / 2)).round_().to(torch.uint8).numpy()


def decoded_shape(images: Any, count: int, img_size: int | None) -> tuple[int, int, int, int]:
    """``(count, C, H, W)`` of ``images`` decoded at ``img_size``."""
    channels = int(images.shape[3]) if len(images.shape) == 4 else 1
    height = img_size or int(images.shape[1])
    width = img_size or int(images.shape[2])
    return (count, channels, height, width)


def images_in_memory(images: Any, rows: Iterable[int], max_value: float,
                     img_size: int | None) -> Images:
    """``images[rows]`` decoded into a uint8 tensor in memory."""
    import torch

    rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
    scale = quantised_scale(images, max_value, img_size)
    out = np.empty(decoded_shape(images, len(rows), img_size), dtype=np.uint8)
    write_uint8(out, images, rows, max_value, img_size, scale)
    return Images(torch.from_numpy(out), scale)
