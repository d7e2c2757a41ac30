"""What the server holds in memory for one live version: an image model or a guarded LM.

Both are immutable once built: a swap replaces the object, so a request that holds one
finishes on exactly that version (docs/design.md section 13).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from storage.workspace import Workspace


@dataclass(frozen=True)
class ImageSpec:
    """A live image version as the registry lists it (cheap to read and compare)."""

    name: str
    version: int
    version_id: int
    shared: str
    classes: tuple[tuple[int, str], ...]  # (label, artifact sha256), label order
    names: tuple[tuple[int, str], ...]  # every class ever: (label, display name)
    forgotten: tuple[str, ...]

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.version_id, self.shared, self.classes)


@dataclass(frozen=True, eq=False)
class ServedImage:
    """One loaded image version; ``predict`` gives probabilities over its live classes."""

    spec: ImageSpec
    model: Any
    device: Any
    img_size: int
    channels: int
    loaded_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def class_ids(self) -> list[int]:
        return [label for label, _ in self.spec.classes]

    @property
    def class_names(self) -> list[str]:
        names = dict(self.spec.names)
        return [names.get(label, str(label)) for label in self.class_ids]

    def predict(self, x: Any) -> Any:
        """Softmax probabilities ``(N, C)`` on the CPU, columns in ``class_names`` order."""
        import torch

        with torch.inference_mode():
            logits = self.model(x.to(self.device))
            return torch.softmax(logits.float(), dim=-1).cpu()


def load_image(ws: Workspace, spec: ImageSpec, device: Any,
               previous: ServedImage | None = None) -> ServedImage:
    """The model of ``spec`` from its verified artifacts.

    A forget keeps the shared artifact and every other class's artifact, so the new version
    is the previous one minus some classes: it is derived from the loaded copy (the bytes
    were verified when that loaded) instead of re-reading the backbone, which makes the swap
    as fast as a forget."""
    import copy

    from engine.serialize import assemble

    if previous is not None and _is_subset(spec, previous.spec):
        model = copy.deepcopy(previous.model)
        model.remove_classes([c for c in previous.class_ids
                              if c not in dict(spec.classes)])
    else:
        shared = ws.artifacts.get(spec.shared)
        classes = {label: ws.artifacts.get(sha) for label, sha in spec.classes}
        model = assemble(shared, classes).to(device).eval()
    config = model.config
    return ServedImage(spec, model, device, int(config["img_size"]), int(config["in_chans"]))


def _is_subset(new: ImageSpec, old: ImageSpec) -> bool:
    old_classes = dict(old.classes)
    return (new.shared == old.shared and len(new.classes) < len(old.classes)
            and all(old_classes.get(label) == sha for label, sha in new.classes))


@dataclass(frozen=True)
class LMSpec:
    """A registered language model and its active rules, as the registry lists them."""

    name: str
    version: int
    spec: str | None
    encoder: str | None
    rules: tuple[str, ...]  # canonical JSON of each active rule's fields

    @property
    def fingerprint(self) -> str:
        """Names the guard configuration in responses without saying what changed."""
        text = json.dumps([self.name, self.version, self.rules], sort_keys=True)
        return "fp_" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class ServedLM:
    """A guarded language model: its guard is built; the LM itself loads on first use."""

    spec: LMSpec
    guard: Any
    lm_cache: dict[str, Any]
    lock: threading.Lock

    def language_model(self, device: str) -> Any:
        from engine.guard.lm import load_language_model

        key = f"{self.spec.spec}:{device}"
        with self.lock:
            if key not in self.lm_cache:
                self.lm_cache[key] = load_language_model(self.spec.spec, device)
            return self.lm_cache[key]


def build_guard(ws: Workspace, spec: LMSpec, encoders: dict[str, Any]) -> Any:
    """The guard of ``spec`` exactly as `guard ask` builds it (engine.guard.registry_jobs)."""
    from engine.guard.classifier import load_sentence_encoder
    from engine.guard.guard import Guard
    from engine.guard.rule_rows import guard_rules

    guard = Guard()
    if spec.rules:
        key = spec.encoder or ""
        if key not in encoders:
            encoders[key] = load_sentence_encoder(spec.encoder)
        guard.encoder = encoders[key]
        guard.rules = guard_rules(ws, [json.loads(r) for r in spec.rules], guard.encoder)
    return guard
