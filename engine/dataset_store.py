"""Where a loaded dataset's decoded images live: memory or the on-disk cache
(docs/design.md section 16).

In memory, the selected images are decoded once into uint8 tensors, refused before any
is made when they would not fit. Streamed, they are decoded once into the cache
(``engine.image_cache``) and read batch by batch through a DataLoader.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.image_cache import cache_folder, cache_key, cached_images, source_fingerprint
from engine.images import (
    Images,
    decoded_shape,
    default_workers,
    images_in_memory,
    quantised_scale,
    write_uint8,
)
from storage.errors import UnpromptError

# Share of the memory available at load time the decoded images may take.
MEMORY_SHARE = 0.7


@dataclass
class Storage:
    """How a load keeps its images: ``stream`` through ``cache_dir`` with ``workers``."""

    stream: bool = False
    cache_dir: str | Path | None = None
    workers: int | None = None


def decoded_images(source: Any, rows: np.ndarray, max_value: float, img_size: int | None,
                   storage: Storage, identity: dict[str, Any]) -> Images:
    """``source[rows]`` decoded at ``img_size``, in memory or in the cache; ``identity``
    names the source (dataset, its files, which part) for the cache key."""
    if not storage.stream or len(rows) == 0:
        return images_in_memory(source, rows, max_value, img_size)
    scale = quantised_scale(source, max_value, img_size)
    shape = decoded_shape(source, len(rows), img_size)
    folder = cache_folder(storage.cache_dir)
    key = cache_key({**identity, "img_size": img_size, "scale": scale,
                     "rows": hashlib.sha256(np.asarray(rows, np.int64).tobytes()).hexdigest()})

    def fill(out: np.ndarray) -> None:
        write_uint8(out, source, np.asarray(rows, np.int64), max_value, img_size, scale)

    workers = default_workers() if storage.workers is None else int(storage.workers)
    return cached_images(folder, key, shape, scale, fill, workers)


def source_identity(name: str, folder: Path | None) -> dict[str, Any]:
    """What a cache key names of the source: the dataset and its files as they are now."""
    return {"dataset": name, "files": source_fingerprint(folder)}


def folder_images(folder: Path, img_size: int | None, channels: int) -> Images:
    """The images directly in ``folder`` (a class to learn), uint8 like training data,
    with ``channels`` channels."""
    from engine.dataset_files import read_images
    from engine.datasets import match_channels

    raw = read_images(folder, img_size)
    images = images_in_memory(raw, np.arange(len(raw)), 255.0, img_size)
    if images.shape[1] == channels:
        return images
    return Images(match_channels(images.float(), channels))


def check_memory(name: str, images: Any, count: int, img_size: int | None,
                 limit: int | None = None) -> None:
    """Refuse a dataset whose uint8 images would not fit in memory, and say how to
    stream it instead (docs/design.md section 16)."""
    need = int(np.prod(decoded_shape(images, count, img_size), dtype=np.int64))
    if limit is None:
        available = available_memory()
        limit = None if available is None else int(available * MEMORY_SHARE)
    if limit is not None and need > limit:
        side = f"{img_size}x{img_size}" if img_size else "their own size"
        raise UnpromptError(
            f"The {name} images at {side} need about {need / 2**30:.1f} GiB in memory "
            f"but only {limit / 2**30:.1f} GiB can be spared; stream them from an "
            "on-disk cache (--stream), or choose a smaller image size or fewer images "
            "per class (--img-size, --max-per-class).")


def available_memory() -> int | None:
    """Bytes of memory available now (None where the platform does not say)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
