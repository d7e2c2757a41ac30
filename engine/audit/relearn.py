"""The relearn attack: how fast does a forgotten class come back? (torch)

For each forgotten class, shot count ``n`` and seed, a copy of the model gets a fresh
prompt and head row (and adapter tokens) for the class; only those train, the rest of
the model stays frozen. The attacker's own loop, not ``learn_class_job``: plain
cross-entropy with every prompt present (the inference condition), on the ``n`` images
repeated to ``per_class`` rows plus ``per_class`` images of each retained class, and no
bias cap or distillation that would hold the class back. The figure is the class's test
accuracy. The retrain reference gets exactly the same attack, images and seeds; a model
whose shared weights kept the class relearns it faster than the reference.
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
PER_CLASS = 50
LR = 5e-3


def relearn_job(model: Any, dataset: Any, forgotten: Sequence[int], *, seeds: Sequence[int],
                shots: Sequence[int] = SHOTS, epochs: int = EPOCHS, per_class: int = PER_CLASS,
                device: Any = "cpu", cancel: CancelToken | None = None
                ) -> Generator[Progress, None, dict[str, Any]]:
    """``{"mean": {"1": acc, ...}, "runs": {"1": [acc per class and seed], ...}}``."""
    runs: dict[str, list[float]] = {str(n): [] for n in shots}
    plan = [(c, n, s) for c in forgotten for n in shots for s in seeds]
    for i, (cid, n, seed) in enumerate(plan):
        x, y = attack_set(dataset, model.class_ids, cid, n, per_class, seed)
        attack = _attack(model, cid, x, y, dataset, epochs, seed, device, cancel)
        acc = yield from scaled(attack, i / len(plan), (i + 1) / len(plan),
                                f"relearn class {cid}, {n} shot(s), seed {seed}")
        runs[str(n)].append(acc)
    return {"mean": {k: float(np.mean(v)) for k, v in runs.items()}, "runs": runs}


def attack_set(dataset: Any, known: Sequence[int], cid: int, n: int, per_class: int,
               seed: int) -> tuple[Any, Any]:
    """``n`` seeded train images of ``cid`` (repeated to ``per_class`` rows) and
    ``per_class`` seeded train images of each class the model knows."""
    import torch

    rng = np.random.default_rng([seed, cid, n])
    labels = dataset.train_y.numpy()
    own = np.flatnonzero(labels == cid)
    if len(own) < n:
        raise UnpromptError(f"class {cid} has only {len(own)} train images, fewer than {n}")
    picked = np.resize(rng.choice(own, n, replace=False), max(per_class, n))
    rows = [picked] + [rng.choice(np.flatnonzero(labels == c),
                                  min(per_class, int((labels == c).sum())), replace=False)
                       for c in known if (labels == c).any()]
    idx = torch.from_numpy(np.concatenate(rows))
    return dataset.train_x[idx], dataset.train_y[idx]


def _attack(model: Any, cid: int, x: Any, y: Any, dataset: Any, epochs: int, seed: int,
            device: Any, cancel: CancelToken | None) -> Generator[Progress, None, float]:
    import torch
    import torch.nn.functional as F

    from engine.objective import fit
    from engine.training import evaluate

    torch.manual_seed(seed)
    victim = copy.deepcopy(model).to(device)
    victim.add_class(cid)
    victim.set_trainable(only_classes=[cid])
    victim.train()
    params = [(n, p) for n, p in victim.named_parameters() if p.requires_grad]

    def step(xb: Any, yb: Any) -> tuple[Any, Any]:
        logits = victim(xb)
        cols = victim.columns(yb)
        return F.cross_entropy(logits, cols), logits.argmax(-1) == cols

    opts = {"epochs": epochs, "batch_size": 64, "lr": LR, "weight_decay": 0.0}
    gen = torch.Generator().manual_seed(seed)
    yield from fit(step, params, x.to(device), y.to(device), opts, gen, cancel, "relearn")
    own = dataset.test_y == cid
    per_class, _ = evaluate(victim, dataset.test_x[own], dataset.test_y[own], device)
    return float(per_class.get(cid, 0.0))
