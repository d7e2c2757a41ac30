"""Operator errors become readable dialogs; anything else is reported, never a crash."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from storage.errors import UnpromptError


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """A warning dialog with one readable sentence (modal: called from the operator's click)."""
    QMessageBox.warning(parent, title, sentence(message))


@contextmanager
def reporting_errors(parent: QWidget | None, title: str) -> Iterator[None]:
    """Run an operator action; an ``UnpromptError`` becomes a dialog and ends the action."""
    try:
        yield
    except UnpromptError as exc:
        show_error(parent, title, str(exc))


def sentence(message: str) -> str:
    """``message`` as a sentence: capital first letter, closing full stop."""
    message = message.strip()
    if not message:
        return "Something went wrong."
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?", ")")) else message + "."


def install_excepthook() -> Callable[..., None]:
    """Show unexpected exceptions raised in slots instead of losing them on stderr.

    Returns the previous hook, for the caller to restore.
    """
    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        traceback.print_exception(kind, exc, tb, file=sys.stderr)
        if QApplication.instance() is not None and not isinstance(exc, KeyboardInterrupt):
            QMessageBox.critical(None, "Unprompt: internal error",
                                 f"An unexpected error occurred ({kind.__name__}: {exc}).\n"
                                 "Details were written to the log (standard error).")

    previous, sys.excepthook = sys.excepthook, hook
    return previous
