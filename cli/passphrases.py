"""Where the CLI gets an operator's passphrase: an environment variable (scripts, CI) or a
prompt without echo when a terminal is attached; never a command-line argument."""

from __future__ import annotations

import getpass
import os
import sys

from storage.errors import UnpromptError

ENV = "UNPROMPT_OPERATOR_PASSPHRASE"
NEW_ENV = "UNPROMPT_NEW_OPERATOR_PASSPHRASE"


def operator_passphrase(name: str) -> str:
    """The passphrase of the acting operator ``name``."""
    value = os.environ.get(ENV)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(f"Passphrase of operator {name}: ")
    raise UnpromptError(f"operator {name!r} must prove their passphrase: set {ENV} "
                        "or run in a terminal")


def new_passphrase(name: str) -> str:
    """A new passphrase for ``name``, typed twice at a terminal."""
    value = os.environ.get(NEW_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise UnpromptError(f"the new passphrase of {name!r} is missing: set {NEW_ENV} "
                            "or run in a terminal")
    first = getpass.getpass(f"New passphrase for operator {name}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise UnpromptError("the two passphrases differ; nothing was changed")
    return first
