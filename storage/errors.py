"""User-facing errors shared by every layer.

An ``UnpromptError`` carries one readable sentence for the operator. The CLI prints it
on stderr with a non-zero exit code; the GUI shows it in a dialog. Anything else that
escapes is a bug.
"""


class UnpromptError(Exception):
    """A problem the operator can understand and fix (bad input, missing file, ...)."""


class WorkspaceError(UnpromptError):
    """The workspace folder is missing, unwritable or not a workspace."""


class IntegrityError(UnpromptError):
    """Stored bytes no longer match their recorded hash."""


class NotFoundError(UnpromptError):
    """A named model, class, rule, request or file does not exist."""


class RefusedError(UnpromptError):
    """The operation is not allowed in the current state (nothing was changed)."""
