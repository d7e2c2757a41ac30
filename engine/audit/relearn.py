"""The relearn attack: how fast does a forgotten class come back? (torch)

For each forgotten class, shot count ``n`` and seed, a copy of the model gets a fresh
prompt and head row for the class (``learn_class_job``: the rest of the model stays
frozen), trained on ``n`` of the class's train images, repeated to the size of one
retained class in the training mix. The figure is the class's test accuracy with every
prompt present. The retrain reference gets exactly the same attack, images and seeds; a
model whose shared weights kept the class relearns it faster than the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from engine.audit.stages import scaled
from engine.jobs import CancelToken, Progress
from storage.errors import UnpromptError

SHOTS = (1, 5, 20)
EPOCHS = 10
RETAIN_PER_CLASS = 50


def relearn_job(model: Any, dataset: Any, forgotten: Sequence[int], *, seeds: Sequence[int],
                shots: Sequence[int] = SHOTS, epochs: int = EPOCHS,
                retain_per_class: int = RETAIN_PER_CLASS, device: str = "auto",
                cancel: CancelToken | None = None
                ) -> Generator[Progress, None, dict[str, Any]]:
    """``{"mean": {"1": acc, ...}, "runs": {"1": [acc per class and seed], ...}}``."""
    runs: dict[str, list[float]] = {str(n): [] for n in shots}
    plan = [(c, n, s) for c in forgotten for n in shots for s in seeds]
    retain = _retained(dataset, forgotten)
    for i, (cid, n, seed) in enumerate(plan):
        images = _shots(dataset, cid, n, retain_per_class, seed)
        attack = _attack(model, cid, images, retain, dataset, epochs, retain_per_class, seed,
                         device, cancel)
        acc = yield from scaled(attack, i / len(plan), (i + 1) / len(plan),
                                f"relearn class {cid}, {n} shot(s), seed {seed}")
        runs[str(n)].append(acc)
    return {"mean": {k: float(np.mean(v)) for k, v in runs.items()}, "runs": runs}


def _attack(model: Any, cid: int, images: Any, retain: tuple[Any, Any], dataset: Any,
            epochs: int, retain_per_class: int, seed: int, device: str,
            cancel: CancelToken | None) -> Generator[Progress, None, float]:
    from engine.training import evaluate, learn_class_job

    victim = copy.deepcopy(model)
    result = yield from learn_class_job(
        victim, cid, images, retain=retain, epochs=epochs, retain_per_class=retain_per_class,
        seed=seed, device=device, cancel=cancel)
    own = dataset.test_y == cid
    per_class, _ = evaluate(result.model, dataset.test_x[own], dataset.test_y[own])
    return float(per_class.get(cid, 0.0))


def _shots(dataset: Any, cid: int, n: int, repeat_to: int, seed: int) -> Any:
    """``n`` seeded train images of class ``cid``, repeated to ``repeat_to`` rows."""
    own = np.flatnonzero(dataset.train_y.numpy() == cid)
    if len(own) < n:
        raise UnpromptError(f"class {cid} has only {len(own)} train images, fewer than {n}")
    picked = np.random.default_rng(seed).choice(own, n, replace=False)
    reps = int(np.ceil(max(repeat_to, n) / n))
    return dataset.train_x[np.tile(picked, reps)[:max(repeat_to, n)]]


def _retained(dataset: Any, forgotten: Sequence[int]) -> tuple[Any, Any]:
    keep = ~np.isin(dataset.train_y.numpy(), list(forgotten))
    return dataset.train_x[keep], dataset.train_y[keep]

