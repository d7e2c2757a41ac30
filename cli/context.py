"""What every command gets: parsed options, the operator, the workspace (opened lazily)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.workspace import Workspace

# Commands that only read: they open an existing workspace and never create one at a
# mistyped path (handlers by module and name).
READ_ONLY = frozenset({
    "cli.certificate_cmds.cmd_verify", "cli.certificate_cmds.cmd_certificates",
    "cli.certificate_cmds.cmd_keys_show", "cli.registry_cmds.cmd_models",
    "cli.registry_cmds.cmd_classes", "cli.registry_cmds.cmd_log_verify",
    "cli.request_cmds.cmd_list", "cli.guard_cmds.cmd_rule_list", "cli.guard_cmds.cmd_ask",
    "cli.image_cmds.cmd_evaluate", "cli.serve_cmds.cmd_serve",
    "cli.serve_cmds.cmd_token_list",
})


@dataclass
class Context:
    args: argparse.Namespace
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace.open(getattr(self.args, "workspace", None),
                                             create=not self.read_only)
        return self._workspace

    @property
    def read_only(self) -> bool:
        handler = getattr(self.args, "handler", None)
        return f"{handler.__module__}.{handler.__name__}" in READ_ONLY if handler else False

    @property
    def operator(self) -> str:
        return getattr(self.args, "operator", None) or _os_user()

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def progress(self, message: str) -> None:
        """Progress goes to stderr so that --json output stays one value on stdout."""
        print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


Renderer = Callable[[Any], str]


def emit(ctx: Context, result: Any, render: Renderer | None = None) -> None:
    """Print the result: one JSON value with --json, readable text otherwise."""
    if ctx.json:
        print(json.dumps(result, indent=None, sort_keys=True, default=str))
    elif render is not None:
        text = render(result)
        if text:
            print(text)
    else:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain text table for the human-readable output."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_with_progress(ctx: Context, job: Any) -> Any:
    """Drain a job, printing its progress on stderr (one line per record, throttled)."""
    from engine.jobs import run_job

    last = [0.0]

    def show(record: Any) -> None:
        import time

        now = time.monotonic()
        if now - last[0] >= 1.0 or record.fraction in (0.0, 1.0):
            last[0] = now
            pct = "" if record.fraction is None else f"{record.fraction:6.1%} "
            ctx.progress(f"{pct}{record.message}")

    return run_job(job, show)
