"""Argument parsing and the error contract: one line on stderr, non-zero exit, no traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cli.context import Context
from cli.parsing import OneLineParser, common_options
from storage.errors import UnpromptError

# Each module has register(subparsers, parent) and sets `handler` on its parsers.
COMMAND_MODULES = ["cli.registry_cmds"]
OPTIONAL_COMMAND_MODULES = [
    "cli.request_cmds", "cli.operator_cmds", "cli.image_cmds", "cli.audit_cmds", "cli.guard_cmds",
    "cli.certificate_cmds", "cli.report_cmds", "cli.serve_cmds", "cli.lm_cmds",
    "cli.retrain_cmds",
]
EXIT_ERROR, EXIT_INTERNAL = 1, 3


def build_parser() -> argparse.ArgumentParser:
    parent = common_options()
    parser = OneLineParser(prog="unprompt", parents=[parent],
                           description="Unprompt: models that forget on request.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=OneLineParser)
    gui = commands.add_parser("gui", parents=[parent], help="open the desktop application")
    gui.set_defaults(handler=None)
    for name in COMMAND_MODULES + OPTIONAL_COMMAND_MODULES:
        module = _import_optional(name, required=name in COMMAND_MODULES)
        if module is not None:
            module.register(commands, parent)
    return parser


def _import_optional(name: str, required: bool):  # noqa: ANN202
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if required or exc.name != name:
            raise
        return None


def open_gui(args: argparse.Namespace) -> int:
    if getattr(args, "workspace", None):
        os.environ["UNPROMPT_WORKSPACE"] = str(args.workspace)
    if getattr(args, "engine", None):
        os.environ["UNPROMPT_ENGINE"] = str(args.engine)
    try:
        _check_engine()
    except UnpromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from gui.app import run_gui

    return run_gui()


def _check_engine() -> None:
    """A Ray engine is joined before any window opens: an unreachable address is one line
    (docs/design.md section 12); the GUI then reuses the connection."""
    from engine.backend import LOCAL, engine_choice

    choice = engine_choice()
    if choice != LOCAL:
        from engine.ray_client import connect

        connect(choice)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        return open_gui(args)
    ctx = Context(args)
    try:
        return args.handler(ctx) or 0
    except UnpromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a path, permission or disk problem the operator can fix
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the contract forbids tracebacks
        if os.environ.get("UNPROMPT_DEBUG"):
            raise
        print(f"error: internal error ({exc.__class__.__name__}: {exc}); "
              "set UNPROMPT_DEBUG=1 for details", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        ctx.close()


def _os_error(exc: OSError) -> str:
    """``strerror: path`` (both paths for a rename or link), else the message."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    return f"{reason}: {' -> '.join(paths)}" if paths else reason
