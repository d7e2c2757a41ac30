"""Which language model a guard job uses, and keeping it loaded in the worker.

A job names a registered language model, a model spec (hub name, folder, GGUF file) or
nothing (the most recently loaded model of the workspace, else the offline default). The
registry row holds the spec and the prompt-classifier encoder (None: the bundled MiniLM).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine.background import Task, in_background, loading, waited
from engine.guard.classifier import ENCODER_HUB, load_sentence_encoder
from engine.guard.lm import LoadedLM, load_language_model, resolve_model_spec
from engine.jobs import Progress
from storage import rules as store
from storage.workspace import Workspace

DEFAULT_LLM_NAME = "smollm2-135m-instruct"
CACHE_PREFIX = "guard.lm:"
LOADING_PREFIX = "guard.lm-loading:"


@dataclass(frozen=True)
class LMChoice:
    """A language model: registry name, spec, encoder, and whether it is registered yet."""

    name: str
    spec: str | None
    encoder: str | None
    registered: bool

    @classmethod
    def of(cls, model: Any) -> LMChoice:
        """From a registered Model row."""
        return cls(model.name, model.config.get("spec"), model.config.get("encoder"), True)


def choose_model(ws: Workspace, model: str | None = None, encoder: str | None = None
                 ) -> LMChoice:
    """Resolve ``model`` (registered name, spec or None); a bad path fails here."""
    with ws.sessions() as session:
        if model and model in {m.name for m in store.language_models(session)}:
            found = store.language_model(session, model)
        elif model is None and encoder is None:
            found = store.current_language_model(session)
        else:
            found = store.find_by_spec(session, model, encoder)
        if found is not None:
            return LMChoice.of(found)
    resolve_model_spec(model)  # an unknown path or a corrupt GGUF header fails here
    return LMChoice(default_name(model), model, encoder, False)


def default_name(spec: str | None) -> str:
    """The registry name of a spec: the offline default, a file stem, a folder name."""
    if spec is None:
        return DEFAULT_LLM_NAME
    path = Path(spec).expanduser()
    name = path.stem if path.is_file() else path.name if path.is_dir() else spec.split("/")[-1]
    return name.lower() or spec


def loading_model(choice: LMChoice, cache: dict[str, Any] | None, device: str = "auto",
                  fraction: float | None = 0.0) -> Generator[Progress, None, LoadedLM]:
    """Job: the language model, loaded once per worker (one at a time) when a cache is given.

    The load (tens of seconds on a CPU) runs in a background thread while the job yields
    progress (engine.background). A job cancelled meanwhile leaves the load in the cache's
    ``guard.lm-loading:`` slot: the next job that needs the same model waits for that load
    instead of starting a second one."""
    key = f"{choice.spec}:{device}"
    cache = cache if cache is not None else {}
    if CACHE_PREFIX + key in cache:
        return cache[CACHE_PREFIX + key]
    task = cache.get(LOADING_PREFIX + key)
    if task is None:
        task = Task(partial(load_language_model, choice.spec, device), f"loading {choice.name}")
        cache[LOADING_PREFIX + key] = task
    try:
        lm = yield from waited(task, loading(choice.name, fraction))
    finally:
        if task.done():
            cache.pop(LOADING_PREFIX + key, None)
    for old in [k for k in cache if k.startswith((CACHE_PREFIX, LOADING_PREFIX))]:
        del cache[old]  # one model at a time: another model's load is dropped when it ends
    cache[CACHE_PREFIX + key] = lm
    return lm


def encoder_loading(choice: LMChoice, fraction: float | None = 0.0
                    ) -> Generator[Progress, None, Any]:
    """Job: the sentence encoder of the model's rules (cached per process), loaded in a
    background thread while the job yields progress."""
    return (yield from in_background(partial(load_sentence_encoder, choice.encoder),
                                     loading("the prompt-classifier encoder", fraction)))


def register(session: Any, choice: LMChoice, lm: LoadedLM, operator: str) -> Any:
    """The Model row of ``choice``, registering it (logged) when it is new."""
    if choice.registered:
        return store.language_model(session, choice.name)
    return store.register_language_model(session, choice.name, choice.spec, choice.encoder,
                                         details(lm, choice), operator)


def details(lm: LoadedLM, choice: LMChoice) -> dict[str, Any]:
    """What the model's version row records about it."""
    return {**lm.describe(), "encoder": choice.encoder or ENCODER_HUB}
