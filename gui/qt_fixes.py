"""Work-arounds for defects of the Qt binding that the application would otherwise hit.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without a new reference, so every
signal emitted from Python takes one reference from ``True``; after a few thousand emits
(one progress event is two) ``True`` is freed and the process aborts with "Fatal Python
error: bool_dealloc". 6.11.3 does not do this. ``install`` measures the defect and, only
where it is present, wraps ``emit`` to give the reference back. Importing the module installs
it; ``gui.bridge`` imports it, so every screen is covered.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

PROBE_EMITS = 8
_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    pinged = Signal()


def emit_drops_true() -> bool:
    """Whether ``emit()`` takes a reference from ``True`` (given back here if so)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBE_EMITS):
        probe.pinged.emit()
    dropped = before - sys.getrefcount(True) >= PROBE_EMITS - 2
    if dropped:
        for _ in range(PROBE_EMITS):
            _incref(True)
    return dropped


def install() -> bool:
    """Wrap ``SignalInstance.emit`` where the binding needs it; True when it did."""
    if getattr(SignalInstance.emit, "unprompt_fix", False) or not emit_drops_true():
        return False
    original = SignalInstance.emit

    def emit(self: SignalInstance, *args: Any) -> Any:
        result = original(self, *args)
        if result is True or result is False:
            _incref(result)
        return result

    emit.unprompt_fix = True
    SignalInstance.emit = emit
    return True


INSTALLED = install()
