"""`operators add / list / check`: who may approve or reject, bound to a passphrase."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from cli.passphrases import ENV, NEW_ENV, new_passphrase, operator_passphrase
from storage import decisions, operators
from storage import requests as reqs


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = add_group(commands, parent, "operators", "operators and their passphrases")
    add = add_command(group, parent, "add",
                      f"register an operator (new passphrase: ${NEW_ENV} or a prompt; "
                      f"after the first operator, --operator proves theirs: ${ENV})", cmd_add)
    add.add_argument("name")
    add_command(group, parent, "list", "registered operators", cmd_list)
    check = add_command(group, parent, "check",
                        f"re-check the signed recording, approval or rejection of a request "
                        f"with the passphrase of the operator who signed it (${ENV} or a "
                        f"prompt)",
                        cmd_check)
    check.add_argument("id", help="request id")
    check.add_argument("--action", choices=["received", "approved", "rejected"],
                       default="approved")


def cmd_add(ctx: Context) -> int:
    name = ctx.args.name
    with ctx.workspace.sessions() as session:
        bootstrap = not operators.has_operators(session)
        if not bootstrap:
            operators.require_registered(session, ctx.operator)
    actor_passphrase = None if bootstrap else operator_passphrase(ctx.operator)
    passphrase = new_passphrase(name)
    with ctx.workspace.sessions.begin() as session:
        operators.add_operator(session, name, passphrase, ctx.operator, actor_passphrase)
        result = {"operator": name.strip(), "added_by": ctx.operator, "bootstrap": bootstrap}
    emit(ctx, result, lambda r: f"Operator {r['operator']} added by {r['added_by']}.")
    return 0


def cmd_list(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        rows = operators.list_operators(session)
    emit(ctx, {"operators": rows}, _render_list)
    return 0


def _render_list(result: dict[str, Any]) -> str:
    if not result["operators"]:
        return "No operators; add the first with `unprompt operators add NAME`."
    rows = [[o["name"], o["status"], o["created_by"], o["created_at"][:19]]
            for o in result["operators"]]
    return table(rows, ["name", "status", "added by", "added at (UTC)"])


def cmd_check(ctx: Context) -> int:
    action = f"request.{ctx.args.action}"
    with ctx.workspace.sessions() as session:
        signer = decisions.signer(session, reqs.get_request(session, ctx.args.id), action)
    passphrase = operator_passphrase(signer)
    with ctx.workspace.sessions() as session:
        request = reqs.get_request(session, ctx.args.id)
        result = decisions.check(session, request, action, passphrase)
    emit(ctx, result, _render_check)
    return 0 if result["valid"] and result["matches_request"] else 1


def _render_check(r: dict[str, Any]) -> str:
    if not r["valid"]:
        return f"Request {r['request']}: the signature of {r['operator']} does NOT verify."
    if not r["matches_request"]:
        return (f"Request {r['request']}: signed by {r['operator']}, but the request was "
                "changed after it was signed.")
    return f"Request {r['request']}: {r['action']} signed by {r['operator']}; it verifies."
