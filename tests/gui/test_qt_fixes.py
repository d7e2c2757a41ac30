"""Signals emitted from Python must not eat references (PySide6 6.12.0 defect, gui.qt_fixes)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from gui import qt_fixes


class _Source(QObject):
    changed = Signal(object)
    pinged = Signal()


def test_emitting_leaves_true_alone() -> None:
    source = _Source()
    received = []
    source.changed.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(5000):  # more than the references True has in a fresh interpreter
        source.changed.emit(i)
        source.pinged.emit()
    assert abs(sys.getrefcount(True) - before) <= 2
    assert len(received) == 5000


def test_the_probe_finds_nothing_left_to_fix() -> None:
    assert not qt_fixes.emit_drops_true()  # installed where needed, or not needed at all
    assert qt_fixes.install() is False  # idempotent
