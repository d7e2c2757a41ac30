"""A pretraining cache for the benchmarks: a backbone pretrained once per configuration.

Pretraining is deterministic for a given configuration and seed on one machine, and it
dominates a benchmark's time on a loaded 2-core machine; ``cached(folder)`` wraps
``engine.training.pretrain_job`` so that a configuration pretrained before (same
``TrainConfig.to_dict()``) is read back instead of trained again. Benchmarks only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from dataclasses import asdict
from pathlib import Path
from typing import Any


def key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def install(folder: Path) -> None:
    """Route ``engine.training.pretrain_job`` through the cache in ``folder``."""
    import torch

    from engine import training
    from engine.jobs import Progress

    original = training.pretrain_job
    folder.mkdir(parents=True, exist_ok=True)

    def cached(config: Any, cancel: Any = None, dataset: Any = None
               ) -> Generator[Progress, None, Any]:
        cfg = config if isinstance(config, training.TrainConfig) else \
            training.TrainConfig.from_dict(config)
        path = folder / f"{key(cfg.to_dict())}.pt"
        if path.is_file() and dataset is None:
            yield Progress(1.0, f"pretrained backbone read from the cache {path.name}")
            return training.PretrainResult(**torch.load(path, weights_only=False))
        result = yield from original(cfg, cancel, dataset)
        torch.save(asdict(result), path)
        return result

    training.pretrain_job = cached
