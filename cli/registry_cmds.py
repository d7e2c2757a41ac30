"""`models`, `classes`, `log verify` and `log checkpoint`: reading the registry, checking
the audit log and anchoring its head."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from storage.registry import list_classes, list_models


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    add_command(commands, parent, "models", "models with versions and status", cmd_models)
    classes = add_command(commands, parent, "classes", "classes of a model with status",
                          cmd_classes)
    classes.add_argument("model", metavar="N")
    log = add_group(commands, parent, "log", "the hash-chained audit log")
    add_command(log, parent, "verify",
                "recompute the audit-log chain and check that every head anchored by a "
                "certificate, report or signed checkpoint is still in it", cmd_log_verify)
    add_command(log, parent, "checkpoint",
                "sign the log's head with the workspace key and keep it under checkpoints/",
                cmd_log_checkpoint)


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
    from reports.log_check import verify_log

    report = verify_log(ctx.workspace)
    emit(ctx, report, _render_chain)
    return 0 if report["valid"] else 1


def _render_chain(result: dict[str, Any]) -> str:
    from reports.log_check import describe_problems

    anchors, points = result["anchors"], result["checkpoints"]
    latest = points["latest"]
    extent = (f"{_count(anchors['checked'], 'anchored head')} and "
              f"{_count(points['checked'], 'signed checkpoint')} checked")
    if latest:
        extent += f", latest of entry {latest['head_seq']} signed {latest['signed_at']}"
    if result["valid"]:
        return (f"Audit log valid: {result['entries']} entries, head "
                f"{result['head_hash'][:16]}; {extent}.")
    lines = [f"Audit log NOT VALID ({extent}):"]
    return "\n".join(lines + [f"- {line}" for line in describe_problems(result)])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_log_checkpoint(ctx: Context) -> int:
    from cli.certificate_cmds import passphrase
    from reports.checkpoints import checkpoint
    from reports.key_admin import has_signing_key, signing_identity

    ws = ctx.workspace
    secret = passphrase(ctx, confirm=not has_signing_key(ws))
    identity = signing_identity(ws, secret, ctx.operator)
    result = checkpoint(ws, identity, ctx.operator, {"kind": "on-demand"})
    emit(ctx, result, _render_checkpoint)
    return 0


def _render_checkpoint(r: dict[str, Any]) -> str:
    text = (f"Checkpoint {r['file']}: entry {r['head_seq']}, head {r['head_hash'][:16]}, "
            f"signed {r['signed_at']}.")
    if r.get("token"):
        text += f" RFC 3161 timestamp: {r['token']}."
    if r.get("timestamp_error"):
        text += f"\nwarning: no timestamp ({r['timestamp_error']}); the checkpoint stands."
    return text
