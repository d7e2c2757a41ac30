"""The decode-once, on-disk cache a streamed dataset is read from (docs/design.md section 16).

A dataset's images are decoded and resized once into ``<key>.u8`` (a raw uint8 array,
``(N, C, H, W)``, read back as an ``np.memmap``) beside ``<key>.json`` (its shape and
scale). The key is a digest of the source (dataset, its files' names, sizes and
modification times), the image size and the split's rows, so a second job on the same
data reuses the cache and changed data never meets a stale one. Written atomically: the
array is filled under a temporary name, flushed, renamed, and only then is the JSON
written; a cache is trusted only with its JSON and the exact byte count, so a decode that
was killed leaves nothing a later job reads (the next decode of that key removes what it
left).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.images import Images
from storage.durable import fsync_path
from storage.errors import UnpromptError

CACHE_ENV = "UNPROMPT_DATA_CACHE"
FORMAT = 1


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$UNPROMPT_DATA_CACHE``, else the user's cache folder."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("unprompt")) / "datasets"


def cache_key(identity: dict[str, Any]) -> str:
    payload = json.dumps({"format": FORMAT, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def source_fingerprint(folder: Path | None) -> list[tuple[str, int, int]]:
    """Every file under ``folder`` with its size and modification time (ns)."""
    if folder is None:
        return []
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        out.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return out


def cached_images(folder: Path, key: str, shape: tuple[int, ...], scale: float,
                  fill: Callable[[np.ndarray], None], workers: int = 0) -> Images:
    """The cached images under ``key``, decoded by ``fill`` first if no trusted cache is
    there; read through a memmap by ``workers`` DataLoader processes."""
    data_path, meta_path = folder / f"{key}.u8", folder / f"{key}.json"
    meta = {"format": FORMAT, "shape": list(shape), "scale": scale}
    if not trusted(data_path, meta_path, meta):
        refuse_disk(folder, int(np.prod(shape, dtype=np.int64)))
        _build(data_path, meta_path, meta, fill)
    memmap = np.memmap(data_path, dtype=np.uint8, mode="r", shape=tuple(shape))
    return Images(memmap, scale, path=data_path, workers=workers)


def trusted(data_path: Path, meta_path: Path, meta: dict[str, Any]) -> bool:
    """A complete cache: its JSON matches and the array has every byte."""
    try:
        found = json.loads(meta_path.read_text())
        size = data_path.stat().st_size
    except (OSError, ValueError):
        return False
    return found == meta and size == int(np.prod(meta["shape"], dtype=np.int64))


def refuse_disk(folder: Path, need: int) -> None:
    """Refuse before decoding when the cache would not fit on its disk."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise UnpromptError(
            f"The streamed images need about {need / 2**30:.1f} GiB in the cache at {folder} "
            f"but only {free / 2**30:.1f} GiB is free; free some space, point "
            f"{CACHE_ENV} at a larger disk, or choose a smaller image size (--img-size).")


def _build(data_path: Path, meta_path: Path, meta: dict[str, Any],
           fill: Callable[[np.ndarray], None]) -> None:
    data_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(data_path)
    partial = data_path.with_name(f"{data_path.name}.partial-{os.getpid()}")
    try:
        out = np.memmap(partial, dtype=np.uint8, mode="w+", shape=tuple(meta["shape"]))
        fill(out)
        out.flush()
        del out
        fsync_path(partial)
        os.replace(partial, data_path)
        temp = meta_path.with_name(f"{meta_path.name}.partial-{os.getpid()}")
        temp.write_text(json.dumps(meta))
        fsync_path(temp)
        os.replace(temp, meta_path)
        fsync_path(data_path.parent)
    finally:
        partial.unlink(missing_ok=True)


def _remove_dead_partials(data_path: Path) -> None:
    """Drop what decodes of this cache that were killed left (their process is gone)."""
    for stale in data_path.parent.glob(f"{data_path.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
