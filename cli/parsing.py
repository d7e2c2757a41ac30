"""argparse pieces shared by every command module."""

from __future__ import annotations

import argparse

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see --help)\n")


def common_options() -> argparse.ArgumentParser:
    """Options accepted both before and after the command name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--workspace", default=argparse.SUPPRESS, metavar="DIR",
                        help="workspace folder (default: $UNPROMPT_WORKSPACE or the "
                             "user-data folder)")
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print exactly one JSON value on stdout")
    parent.add_argument("--operator", default=argparse.SUPPRESS, metavar="NAME",
                        help="who is acting (default: the OS user)")
    parent.add_argument("--engine", default=argparse.SUPPRESS, metavar="ENGINE",
                        help="where the desktop's jobs run: local (default), auto (a Ray "
                             "instance on this machine) or ray://HOST:PORT "
                             "(default: $UNPROMPT_ENGINE)")
    return parent


def add_command(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser,
                name: str, help_text: str, handler) -> argparse.ArgumentParser:  # noqa: ANN001
    """Add a sub-command that accepts the common options and runs ``handler(ctx)``."""
    parser = commands.add_parser(name, parents=[parent], help=help_text,
                                 description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def add_group(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser,
              name: str, help_text: str) -> argparse._SubParsersAction:
    """Add a command with its own sub-commands (`log verify`, `guard rule add`, ...)."""
    parser = commands.add_parser(name, parents=[parent], help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True,
                                 parser_class=OneLineParser)
