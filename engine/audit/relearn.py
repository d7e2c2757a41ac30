"""The relearn attack: how fast does a forgotten class come back? (torch)

For each forgotten class, shot count ``n`` and seed, a copy of the model gets a fresh
prompt and head row (and adapter tokens) for the class; only those train, the rest of
the model stays frozen. The attacker's own loop, not ``learn_class_job``: plain
cross-entropy with every prompt present (the inference condition), on the ``n`` images
repeated to ``per_class`` rows plus ``per_class`` images of each retained class, and no
bias cap or distillation that would hold the class back. The figure is the class's test
accuracy. The retrain reference gets exactly the same attack, images and seeds; a model
whose shared weights kept the class relearns it faster than the reference.

A model whose features never depend on its classes (``features_frozen``: the independent
mode, docs/design.md section 17) is attacked on features computed once per audit: the
same attack, without a backbone pass per step (docs/design.md section 15).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from engine.audit.stages import scaled
from engine.jobs import CancelToken, Progress
from storage.errors import UnpromptError

SHOTS = (1, 5, 20)
EPOCHS = 10
PER_CLASS = 50
LR = 5e-3


def recipe(seeds: Sequence[int], epochs: int, shots: Sequence[int] = SHOTS,
           per_class: int = PER_CLASS) -> dict[str, Any]:
    """Everything besides the model and its data that decides the attack's figures."""
    return {"seeds": [int(s) for s in seeds], "epochs": int(epochs),
            "shots": [int(n) for n in shots], "per_class": int(per_class), "lr": LR}


def relearn_job(model: Any, dataset: Any, forgotten: Sequence[int], *, seeds: Sequence[int],
                shots: Sequence[int] = SHOTS, epochs: int = EPOCHS, per_class: int = PER_CLASS,
                device: Any = "cpu", cancel: CancelToken | None = None
                ) -> Generator[Progress, None, dict[str, Any]]:
    """``{"mean": {"1": acc, ...}, "runs": {"1": [acc per class and seed], ...}}``."""
    runs: dict[str, list[float]] = {str(n): [] for n in shots}
    labels = dataset.train_y.numpy()
    plan = [(c, n, s, attack_rows(labels, model.class_ids, c, n, per_class, s))
            for c in forgotten for n in shots for s in seeds]
    inputs = _inputs(model, dataset, forgotten, [rows for *_, rows in plan], device)
    for i, (cid, n, seed, rows) in enumerate(plan):
        attack = _attack(model, cid, rows, inputs, epochs, seed, device, cancel)
        acc = yield from scaled(attack, i / len(plan), (i + 1) / len(plan),
                                f"relearn class {cid}, {n} shot(s), seed {seed}")
        runs[str(n)].append(acc)
    return {"mean": {k: float(np.mean(v)) for k, v in runs.items()}, "runs": runs}


def attack_rows(labels: np.ndarray, known: Sequence[int], cid: int, n: int, per_class: int,
                seed: int) -> np.ndarray:
    """Train-split rows of the attack: ``n`` seeded images of ``cid`` (repeated to
    ``per_class`` rows) and ``per_class`` seeded images of each class the model knows."""
    rng = np.random.default_rng([seed, cid, n])
    own = np.flatnonzero(labels == cid)
    if len(own) < n:
        raise UnpromptError(f"class {cid} has only {len(own)} train images, fewer than {n}")
    picked = np.resize(rng.choice(own, n, replace=False), max(per_class, n))
    rows = [picked] + [rng.choice(np.flatnonzero(labels == c),
                                  min(per_class, int((labels == c).sum())), replace=False)
                       for c in known if (labels == c).any()]
    return np.concatenate(rows)


def attack_set(dataset: Any, known: Sequence[int], cid: int, n: int, per_class: int,
               seed: int) -> tuple[Any, Any]:
    """The attack's images and labels (see ``attack_rows``)."""
    import torch

    idx = torch.from_numpy(attack_rows(dataset.train_y.numpy(), known, cid, n, per_class,
                                       seed))
    return dataset.train_x[idx], dataset.train_y[idx]


class _Inputs:
    """What an attack trains and is tested on: images, or a frozen model's features."""

    def __init__(self, dataset: Any, forward: Callable[[Any, Any], Any],
                 train: Callable[[np.ndarray], Any], test: Callable[[int], Any]) -> None:
        self.dataset, self.forward, self._train, self._test = dataset, forward, train, test

    def train(self, rows: np.ndarray) -> tuple[Any, Any]:
        import torch

        return self._train(rows), self.dataset.train_y[torch.from_numpy(rows)]

    def test(self, cid: int) -> Any:
        return self._test(cid)


def _inputs(model: Any, dataset: Any, forgotten: Sequence[int], rows: list[np.ndarray],
            device: Any) -> _Inputs:
    import torch

    if not getattr(model, "features_frozen", False):
        return _Inputs(dataset, lambda victim, x: victim(x),
                       lambda r: dataset.train_x[torch.from_numpy(r)],
                       lambda cid: dataset.test_x[dataset.test_y == cid])
    needed = np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)
    lookup = np.full(len(dataset.train_y), -1)
    lookup[needed] = np.arange(len(needed))
    train = _features(model, dataset.train_x[torch.from_numpy(needed)], device)
    test = {c: _features(model, dataset.test_x[dataset.test_y == c], device)
            for c in forgotten}
    return _Inputs(dataset, lambda victim, f: victim.head_logits(f),
                   lambda r: train[torch.from_numpy(lookup[r])], test.__getitem__)


def _features(model: Any, x: Any, device: Any) -> Any:
    """The frozen model's features of ``x`` (on the host)."""
    import torch

    from engine.images import as_images, in_order

    model.eval().to(device)
    source = as_images(x)
    with torch.no_grad():
        parts = [model.features(xb).cpu()
                 for xb in source.batches(in_order(len(source), 256), device)]
    return torch.cat(parts) if parts else torch.zeros(0, model.feature_dim)


def _attack(model: Any, cid: int, rows: np.ndarray, inputs: _Inputs, epochs: int, seed: int,
            device: Any, cancel: CancelToken | None) -> Generator[Progress, None, float]:
    import torch
    import torch.nn.functional as F

    from engine.objective import fit

    torch.manual_seed(seed)
    victim = copy.deepcopy(model).to(device)
    victim.add_class(cid)
    victim.set_trainable(only_classes=[cid])
    victim.train()
    params = [(n, p) for n, p in victim.named_parameters() if p.requires_grad]

    def step(xb: Any, yb: Any) -> tuple[Any, Any]:
        logits = inputs.forward(victim, xb)
        cols = victim.columns(yb)
        return F.cross_entropy(logits, cols), logits.argmax(-1) == cols

    x, y = inputs.train(rows)
    opts = {"epochs": epochs, "batch_size": 64, "lr": LR, "weight_decay": 0.0}
    gen = torch.Generator().manual_seed(seed)
    yield from fit(step, params, x, y.to(device), opts, gen, cancel, "relearn")
    return _accuracy(victim, inputs, cid, device)


def _accuracy(victim: Any, inputs: _Inputs, cid: int, device: Any) -> float:
    """The share of ``cid``'s test images the relearned copy puts in ``cid``."""
    import torch

    victim.eval()
    with torch.no_grad():
        x = inputs.test(cid)
        if len(x) == 0:
            return 0.0
        logits = torch.cat([inputs.forward(victim, part.to(device).float())
                            for part in x.split(256)])
    ids = torch.tensor(victim.class_ids, device=logits.device)
    return float((ids[logits.argmax(-1)] == cid).float().mean())
