"""The one place that picks the engine backend (docs/design.md section 12).

``local`` (the default) is the spawn worker of docs/design.md section 9; ``auto`` joins a
Ray instance already running on this machine; ``ray://HOST:PORT`` a team's Ray cluster.
The choice comes from ``--engine`` or ``UNPROMPT_ENGINE``.
"""

from __future__ import annotations

import os
from typing import Any

from storage.errors import UnpromptError

ENGINE_ENV = "UNPROMPT_ENGINE"
LOCAL = "local"


def engine_choice(engine: str | None = None) -> str:
    """``engine`` or ``$UNPROMPT_ENGINE`` or ``local``, checked."""
    choice = (engine or os.environ.get(ENGINE_ENV, "") or LOCAL).strip()
    if choice in (LOCAL, "auto") or (choice.startswith("ray://") and len(choice) > 6):
        return choice
    raise UnpromptError(f"unknown engine {choice!r}: use local, auto or ray://HOST:PORT")


def make_client(engine: str | None = None) -> Any:
    """An engine client (``EngineClient`` or ``RayEngineClient``) for the chosen backend.

    A Ray backend is joined here, so an unreachable address is an UnpromptError naming it
    before any window opens or anything is written."""
    choice = engine_choice(engine)
    if choice == LOCAL:
        from engine.worker import EngineClient  # (as gui/app.py always did)

        return EngineClient()
    from engine.ray_client import RayEngineClient

    client = RayEngineClient(choice)
    client.start()
    return client
