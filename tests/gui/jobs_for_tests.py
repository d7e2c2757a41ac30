"""Tiny jobs for the worker tests; importable by the spawned worker process (no Qt)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, Progress
from storage.errors import UnpromptError


def fake_device() -> str:
    """A device probe that skips importing torch, so test workers start fast."""
    return "CPU (test probe)"


def count(n: int = 3, delay: float = 0.0, cancel: CancelToken | None = None,
          workspace: str | None = None):  # noqa: ANN201 - a job generator
    """Yield n progress records and return a small summary."""
    for i in range(n):
        yield Progress((i + 1) / n, f"step {i + 1} of {n}", {"step": i + 1})
        time.sleep(delay)
    return {"total": n, "pid": os.getpid()}


def forever(cancel: CancelToken, workspace: str | None = None):  # noqa: ANN201
    """Yield until cancelled (the worker stops it at the next yield)."""
    i = 0
    while True:
        i += 1
        yield Progress(None, f"tick {i}")
        time.sleep(0.02)


def refuse(what: str = "model 'x'", workspace: str | None = None,
           **_options: Any):  # noqa: ANN201 - takes any job's kwargs
    raise UnpromptError(f"no {what} in this workspace")
    yield  # pragma: no cover - makes this a generator


def boom() -> None:
    raise ValueError("bad value")


def crash(workspace: str | None = None):  # noqa: ANN201
    yield Progress(0.5, "about to crash")
    os._exit(1)


def not_plain() -> Any:
    return object()


def remember(key: str, value: Any, cache: dict) -> dict[str, Any]:
    """Store ``value`` in the worker cache; return what was there before."""
    before = cache.get(key)
    cache[key] = value
    return {"before": before, "pid": os.getpid()}


def options(cancel: CancelToken, **options: Any) -> dict[str, Any]:
    """A catch-all ``**options`` gets the job's kwargs only (no ``cache``)."""
    return {"options": sorted(options)}


def crashing_probe() -> str:
    """A worker that dies while it starts (a broken installation, say)."""
    os._exit(3)


def fake_train(workspace: str, *, name: str, operator: str, epochs: int = 2,
               cancel: CancelToken | None = None, **options: Any):  # noqa: ANN201
    """Progress records shaped like ``engine.objective.fit``'s, then a train job's result."""
    steps = 2 * epochs
    for step in range(1, steps + 1):
        epoch = (step + 1) // 2
        yield Progress(step / steps, f"epoch {epoch} of {epochs}",
                       {"epoch": epoch, "epochs": epochs, "step": step, "steps": steps,
                        "loss": 2.0 / step, "accuracy": step / steps, "eta_s": steps - step})
        time.sleep(float(options.get("delay", 0.0)))
    return {"name": name, "version": 1, "classes": ["0", "1"], "test_accuracy": 0.9,
            "seconds": 1.5, "device": "CPU", "mode": options.get("mode", "full"),
            "erasure_kind": "approximate"}


def fake_pretrain(workspace: str, *, name: str, operator: str, **options: Any):  # noqa: ANN201
    """Registers a backbone row the way ``pretrain_backbone_job`` does (without training)."""
    from storage.models import Model
    from storage.workspace import Workspace

    yield Progress(0.5, "epoch 1 of 1")
    ws = Workspace.open(workspace)
    with ws.sessions.begin() as session:
        session.add(Model(name=name, kind="backbone", training_mode="pretrain"))
    ws.close()
    return {"name": name, "version": 1, "test_accuracy": 0.8, "seconds": 2.0,
            "classes": options.get("classes")}


def draws(n: int = 20, seed: int = 7, delay: float = 0.0):  # noqa: ANN201
    """Seeded random draws with a yield between each: what a training loop does."""
    import random

    random.seed(seed)
    out = []
    for i in range(n):
        out.append(random.random())
        yield Progress((i + 1) / n, f"draw {i + 1}")
        time.sleep(delay)
    return {"draws": out}


def scramble(k: int = 5) -> dict[str, Any]:
    """Draw from the global generator (an interleaved job must not shift a long job's)."""
    import random

    return {"drawn": [random.random() for _ in range(k)]}




def gate(path: str, fail: bool = False, workspace: str | None = None,
         message: str = "", **_options: Any):  # noqa: ANN201 - takes a demo job's operator too
    """Yield until the file ``path`` exists, then return (or fail, when ``fail``): lets a
    test decide exactly when a job moves on, without timing."""
    from pathlib import Path

    ticks = 0
    while not Path(path).exists():
        ticks += 1
        yield Progress(None, message or f"waiting for {Path(path).name}")
        time.sleep(0.01)
    if fail:
        raise UnpromptError("the gated job failed after its gate opened")
    return {"ticks": ticks}


def release(path: str, workspace: str | None = None) -> dict[str, Any]:
    """Open a ``gate``."""
    from pathlib import Path

    Path(path).write_text("open", encoding="utf-8")
    return {"released": path}


def fake_forget(workspace: str, *, model_name: str, classes: list[str], operator: str,
                request: int | None = None) -> dict[str, Any]:
    """A result shaped like ``forget_job``'s (the Models screen's panel shows it)."""
    before = {"per_class": {c: 0.9 for c in classes}, "retained": 0.9}
    after = {"per_class": {c: 0.0 for c in classes}, "retained": 0.89}
    return {"model": model_name, "from_version": 1, "version": 2, "erasure_kind": "isolated",
            "latency_ms": 42.0, "purged": [], "forgotten": classes,
            "residual_scan": {"clean": True, "files_scanned": 3, "bytes_scanned": 1e6,
                              "patterns": 2},
            "accuracy_before": before, "accuracy_after": after}


def slow_if_marked() -> str:
    """A worker that takes long to start once ``UNPROMPT_TEST_MARKER`` names a file."""
    marker = os.environ.get("UNPROMPT_TEST_MARKER", "")
    if marker and Path(marker).exists():
        time.sleep(60)
    return "CPU (test probe)"


def crash_marked(marker: str, workspace: str) -> None:
    """Die at once, and make the next worker slow to start (see ``slow_if_marked``)."""
    Path(marker).touch()
    os._exit(1)


TINY_LIRA = {"dataset": "digits", "classes": [0, 1, 2], "img_size": 8, "patch_size": 4,
             "epochs": 1, "augment": 0, "seed": 0, "max_per_class": 60,
             "overrides": {"embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}}


def tiny_lira(k: int = 2, cancel: CancelToken | None = None, timed: bool = False,
              **changes: Any):  # noqa: ANN201
    """LiRA (k shadows) on a one-epoch tiny-digits target, class 2 forgotten: its metrics
    (and, when ``timed``, the LiRA part's seconds: bench/parallel.py). ``changes`` alter
    the training config. On the Ray backend the shadows fan out as Ray tasks."""
    import torch

    from engine.audit.lira import lira_job
    from engine.datasets import load_dataset
    from engine.training import TrainConfig, train_job

    torch.set_num_threads(1)
    config = {**TINY_LIRA, **changes}
    data = load_dataset("digits", classes=config["classes"], img_size=8,
                        max_per_class=config["max_per_class"])
    target = yield from train_job(TrainConfig.from_dict(config), cancel, dataset=data)
    start = time.monotonic()
    results = yield from lira_job({"target": target.model}, data, config, None, k=k,
                                  forgotten=[2], per_class=15, cancel=cancel)
    if timed:
        return {"metrics": results["target"][0], "lira_s": time.monotonic() - start}
    return results["target"][0]
