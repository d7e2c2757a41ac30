"""`request new / approve / reject / list` and `settings`: the erasure-request lifecycle."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from cli.passphrases import ENV, operator_passphrase
from storage import operators
from storage import requests as reqs
from storage.artifact_store import KINDS
from storage.settings import all_settings, set_setting
from storage.subject_key import subject_key


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = add_group(commands, parent, "request", "erasure requests")
    new = add_command(group, parent, "new",
                      f"record an erasure request as --operator; with four-eyes on they prove "
                      f"their passphrase (${ENV} or a prompt)", cmd_new)
    new.add_argument("--model", required=True, metavar="N")
    new.add_argument("--class", dest="classes", action="append", default=[], metavar="C")
    new.add_argument("--rule", metavar="R")
    new.add_argument("--subject", required=True, metavar="REF",
                     help="data-subject reference (stored only as a keyed hash); for a model "
                     "fine-tuned on a people corpus, the person's name: the request then "
                     "covers their records")
    new.add_argument("--legal-basis", required=True, metavar="TEXT")
    approve = add_command(group, parent, "approve",
                          f"approve a request as --operator, who proves their passphrase "
                          f"(${ENV} or a prompt)", cmd_approve)
    approve.add_argument("id")
    reject = add_command(group, parent, "reject",
                         f"reject a request as --operator, who proves their passphrase "
                         f"(${ENV} or a prompt)", cmd_reject)
    reject.add_argument("id")
    reject.add_argument("--reason", required=True)
    add_command(group, parent, "list", "requests with due dates, overdue first", cmd_list)
    settings = add_command(commands, parent, "settings", "show or change workspace settings",
                           cmd_settings)
    settings.add_argument("--four-eyes", choices=["on", "off"],
                          help=f"turning it off needs --operator's passphrase (${ENV})")
    settings.add_argument("--tsa-url", metavar="URL", help="RFC 3161 timestamp authority")
    settings.add_argument("--artifact-store", choices=KINDS,
                          help="what the workspace folder lives on: certificates say what a "
                               "purge covers there (docs/artifact-stores.md)")


def cmd_new(ctx: Context) -> int:
    a = ctx.args
    passphrase = _requester_passphrase(ctx)
    with ctx.workspace.sessions.begin() as session:
        request = reqs.create_request(session, model_name=a.model, classes=a.classes,
                                      rule=a.rule, subject=a.subject,
                                      legal_basis=a.legal_basis, operator=ctx.operator,
                                      passphrase=passphrase,
                                      subject_key=subject_key(ctx.workspace.keys_dir))
        result = reqs.request_dict(request)
    emit(ctx, result, lambda r: f"Request {r['id']} received; due {r['due_at'][:10]}.")
    return 0


def _requester_passphrase(ctx: Context) -> str | None:
    """With four-eyes on, the requester's passphrase (an unknown name is refused first)."""
    with ctx.workspace.sessions() as session:
        if not reqs.requester_must_prove(session, ctx.operator):
            return None
    return operator_passphrase(ctx.operator)


def cmd_approve(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:  # refuse before asking for the passphrase
        reqs.check_approvable(session, ctx.args.id, ctx.operator)
    passphrase = operator_passphrase(ctx.operator)
    with ctx.workspace.sessions.begin() as session:
        result = reqs.request_dict(reqs.approve(session, ctx.args.id, ctx.operator,
                                                passphrase))
    if "subject_records" in result["scope"]:
        return _forget_subject(ctx, result)
    emit(ctx, result, lambda r: f"Request {r['id']} approved by {r['approved_by']}.")
    return 0


def _forget_subject(ctx: Context, approved: dict[str, Any]) -> int:
    """A request about a person of a fine-tuned model: on approval, build and enable their
    forget rule (docs/design.md section 14); `lm forget --request R` retries it."""
    from cli.context import run_with_progress
    from engine.guard.subject_jobs import forget_subject_job

    ctx.progress(f"Request {approved['id']} approved by {approved['approved_by']}; building "
                 "the person's forget rule.")
    job = forget_subject_job(ctx.workspace.root, request=approved["id"], operator=ctx.operator)
    rule = run_with_progress(ctx, job)
    emit(ctx, {**approved, "status": "executed", "rule": rule},
         lambda r: f"Request {r['id']} executed: forget rule {r['rule']['name']} of "
                   f"{r['rule']['model']} is enabled (held-out TPR "
                   f"{r['rule']['calibration']['tpr_held_out_phrasings']:.1%}, FPR on unseen "
                   f"people {r['rule']['calibration']['fpr_test_people']:.1%}).")
    return 0


def cmd_reject(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        operators.require_registered(session, ctx.operator)
    passphrase = operator_passphrase(ctx.operator)
    with ctx.workspace.sessions.begin() as session:
        result = reqs.request_dict(reqs.reject(session, ctx.args.id, ctx.operator,
                                               ctx.args.reason, passphrase))
    emit(ctx, result, lambda r: f"Request {r['id']} rejected: {r['rejected_reason']}")
    return 0


def cmd_list(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        rows = reqs.list_requests(session)
    emit(ctx, {"requests": rows}, _render_list)
    return 0


def _render_list(result: dict[str, Any]) -> str:
    if not result["requests"]:
        return "No erasure requests."
    rows = [[r["id"], r["status"] + (" OVERDUE" if r["overdue"] else ""), r["due_at"][:10],
             _scope_text(r["scope"]), r["requested_by"]] for r in result["requests"]]
    return table(rows, ["id", "status", "due", "scope", "requested by"])


def _scope_text(scope: dict[str, Any]) -> str:
    if scope.get("kind") == "rule":
        return f"{scope['model']}: rule {scope['rule']}"
    return f"{scope['model']}: " + ", ".join(c["name"] for c in scope.get("classes", []))


def cmd_settings(ctx: Context) -> int:
    a = ctx.args
    changes = {}
    if a.four_eyes:
        changes["four_eyes"] = a.four_eyes == "on"
    if a.tsa_url is not None:
        changes["tsa_url"] = a.tsa_url
    if a.artifact_store is not None:
        changes["artifact_store"] = a.artifact_store
    passphrase = _passphrase_to_relax(ctx, changes)
    with ctx.workspace.sessions.begin() as session:
        if passphrase is not None:
            operators.authenticate(session, ctx.operator, passphrase)
        for key, value in changes.items():
            set_setting(session, key, value, ctx.operator)
        result = all_settings(session)
    emit(ctx, result)
    return 0


def _passphrase_to_relax(ctx: Context, changes: dict[str, Any]) -> str | None:
    """Turning four-eyes off needs a registered operator's passphrase (once there are any)."""
    if changes.get("four_eyes") is not False:
        return None
    with ctx.workspace.sessions() as session:
        if not operators.has_operators(session):
            return None
        operators.require_registered(session, ctx.operator)
    return operator_passphrase(ctx.operator)
