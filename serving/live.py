"""The live versions the server answers with, kept in step with the registry (section 13).

Every state change writes an audit-log entry in its own transaction (docs/design.md section
3.2), so the head ``seq`` of the log is a generation counter: one indexed read every few
milliseconds tells whether anything changed. When it moves, the registry's live versions,
active rules and tokens are re-read; a changed model is loaded beside the old one and swapped
in with one reference assignment. Requests hold the object they started with, so they finish
on their version; the old one is freed when the last of them ends. A model that fails to
load is taken out of service (never left on its old, possibly forgotten, version) and retried.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from typing import Any

from sqlalchemy import func, select

from serving.models import (
    ImageSpec,
    LMSpec,
    ServedImage,
    ServedLM,
    build_guard,
    load_image,
)
from storage import rules as rule_store
from storage.models import AuditLogEntry, Model
from storage.tokens import active_tokens
from storage.workspace import Workspace


class LiveRegistry:
    """Snapshots of the live versions, refreshed by a polling thread."""

    def __init__(self, ws: Workspace, device: Any = "cpu", poll_s: float = 0.01,
                 on_swap: Any = None) -> None:
        self.ws, self.device, self.poll_s = ws, device, poll_s
        self.on_swap = on_swap or (lambda _swap: None)
        self.generation = -1
        self.images: dict[str, ServedImage] = {}
        self.unavailable: dict[str, str] = {}
        self.lms: dict[str, ServedLM] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.swaps: deque[dict[str, Any]] = deque(maxlen=200)
        self._retry = False
        self._encoders: dict[str, Any] = {}
        self._lm_cache: dict[str, Any] = {}
        self._lm_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a request saw a newer generation: refresh now
        self._loop_raw: Any = None  # the event loop's own connection for that check
        self._thread: threading.Thread | None = None
        self._raw: Any = None
        self._refreshing = threading.Lock()  # one refresh at a time: never an older snapshot last

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="unprompt: registry watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for raw in (self._raw, self._loop_raw):
            if raw is not None:
                raw.close()
        self._raw = self._loop_raw = None

    async def fresh(self, limit_s: float = 10.0) -> None:
        """Wait until the snapshot is at least as new as the registry is now.

        Called when a request starts: a request that starts after a commit (a forget, a rule,
        a revocation) is never answered from the state before it, however late the poll;
        the poll only bounds how long such a request waits. One indexed read."""
        import asyncio

        if self._loop_raw is None:
            self._loop_raw = self.ws.engine.raw_connection()
        seen = _head_seq(self._loop_raw)
        if seen <= self.generation:
            return
        self._wake.set()
        deadline = time.monotonic() + limit_s
        while self.generation < seen and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)
        if self.generation < seen:
            from serving.inputs import BadRequest

            raise BadRequest(503, "the server is catching up with the registry; retry shortly")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a busy or moved database: retry
                print(f"unprompt serve: registry read failed ({type(exc).__name__}); "
                      "retrying", file=sys.stderr)
                self._retry = True

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> bool:
        """Re-read the registry if its generation moved; True when it did."""
        with self._refreshing:
            return self._refresh()

    def _refresh(self) -> bool:
        if self._read_generation() == self.generation and not self._retry:
            return False
        with self.ws.sessions() as session:
            generation = session.scalar(select(func.max(AuditLogEntry.seq))) or 0
            images = image_specs(session)
            lms = lm_specs(session)
            tokens = active_tokens(session)
        self._retry = False
        self._swap_images(images, generation)
        self._swap_lms(lms, generation)
        self.tokens = tokens
        self.generation = generation
        return True

    def _read_generation(self) -> int:
        """The log's head seq on one kept connection, outside any transaction: tens of
        microseconds, so polling every few milliseconds costs nothing."""
        if self._raw is None:
            self._raw = self.ws.engine.raw_connection()
        return _head_seq(self._raw)

    def _swap_images(self, specs: dict[str, ImageSpec], generation: int) -> None:
        current, fresh, down = self.images, {}, {}
        for name, spec in specs.items():
            old = current.get(name)
            if old is not None and old.spec.key == spec.key:
                fresh[name] = old if old.spec == spec else _respec(old, spec)
                continue
            try:
                fresh[name] = load_image(self.ws, spec, self.device, old)
            except Exception as exc:  # noqa: BLE001 - out of service until it loads
                down[name] = f"version {spec.version} could not be loaded ({exc})"
                self._retry = True
                continue
            self._record(name, old.version if old else None, spec.version, generation)
        self.images, self.unavailable = fresh, down

    def _swap_lms(self, specs: dict[str, LMSpec], generation: int) -> None:
        current, fresh = self.lms, {}
        for name, spec in specs.items():
            old = current.get(name)
            if old is not None and old.spec == spec:
                fresh[name] = old
                continue
            try:
                guard = build_guard(self.ws, spec, self._encoders)
            except Exception as exc:  # noqa: BLE001
                self.unavailable[name] = f"its forget rules could not be loaded ({exc})"
                self._retry = True
                continue
            fresh[name] = ServedLM(spec, guard, self._lm_cache, self._lm_lock)
            self._record(name, old.spec.fingerprint if old else None, spec.fingerprint,
                         generation)
        self.lms = fresh

    def _record(self, name: str, before: Any, after: Any, generation: int) -> None:
        swap = {"model": name, "from": before, "to": after, "generation": generation,
                "at": time.time()}
        self.swaps.append(swap)
        self.on_swap(swap)


def _head_seq(raw: Any) -> int:
    """The audit log's head seq on a raw DB-API connection, outside any transaction."""
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT max(seq) FROM audit_log")
        value = cursor.fetchone()[0]
    finally:
        cursor.close()
    raw.rollback()  # a server database: end the snapshot, see the next commit
    return int(value or 0)


def _respec(old: ServedImage, spec: ImageSpec) -> ServedImage:
    """Same weights, new names or statuses (a class record changed, not the version)."""
    return ServedImage(spec, old.model, old.device, old.img_size, old.channels, old.loaded_at)


def image_specs(session: Any) -> dict[str, ImageSpec]:
    """Every image model's live version, as plain comparable data."""
    out = {}
    for model in session.scalars(select(Model).where(Model.kind == "image")):
        live = [v for v in model.versions if v.status == "live"]
        if not live:
            continue
        version = live[-1]
        classes = tuple(sorted((int(k), str(v)) for k, v in version.class_artifacts.items()))
        out[model.name] = ImageSpec(
            model.name, version.number, version.id, version.shared_artifact, classes,
            tuple((c.label_index, c.display_name) for c in model.classes),
            tuple(c.display_name for c in model.classes if c.status == "forgotten"))
    return out


def lm_specs(session: Any) -> dict[str, LMSpec]:
    """Every registered language model with the fields of its active rules."""
    models = rule_store.language_models(session)
    if not models:
        return {}
    from engine.guard.rule_rows import rule_fields

    out = {}
    for model in models:
        rules = tuple(json.dumps(rule_fields(r), sort_keys=True, default=str)
                      for r in rule_store.rules_of(session, model, active_only=True))
        number = max((v.number for v in model.versions if v.status == "live"), default=1)
        out[model.name] = LMSpec(model.name, number, model.config.get("spec"),
                                 model.config.get("encoder"), rules)
    return out
