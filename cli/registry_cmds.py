"""`models`, `classes` and `log verify`: reading the registry and checking the audit log."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from storage import auditlog
from storage.registry import list_classes, list_models


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    add_command(commands, parent, "models", "models with versions and status", cmd_models)
    classes = add_command(commands, parent, "classes", "classes of a model with status",
                          cmd_classes)
    classes.add_argument("model", metavar="N")
    log = add_group(commands, parent, "log", "the hash-chained audit log")
    add_command(log, parent, "verify", "recompute the audit-log chain", cmd_log_verify)


def cmd_models(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        models = list_models(session)
    emit(ctx, {"models": models}, _render_models)
    return 0


def _render_models(result: dict[str, Any]) -> str:
    if not result["models"]:
        return "No models yet. Train one with `train --dataset digits --name demo`."
    rows = [[m["name"], m["kind"], m["mode"], m["backbone"], m["live_version"],
             len(m["versions"])] for m in result["models"]]
    return table(rows, ["name", "kind", "mode", "backbone", "live", "versions"])


def cmd_classes(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        classes = list_classes(session, ctx.args.model)
    emit(ctx, {"model": ctx.args.model, "classes": classes}, _render_classes)
    return 0


def _render_classes(result: dict[str, Any]) -> str:
    rows = [[c["index"], c["name"], c["status"], c["forgotten_in_version"] or ""]
            for c in result["classes"]]
    return table(rows, ["index", "name", "status", "forgotten in"])


def cmd_log_verify(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        report = auditlog.verify(session)
    emit(ctx, report.to_dict(), _render_chain)
    return 0 if report.valid else 1


def _render_chain(result: dict[str, Any]) -> str:
    if result["valid"]:
        return f"Audit log valid: {result['entries']} entries, head {result['head_hash'][:16]}"
    return f"Audit log BROKEN at entry {result['first_bad']}: {result['reason']}"
