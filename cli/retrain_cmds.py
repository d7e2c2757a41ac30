"""`retrain N [--request R ...]`: the retrain follow-up that makes erasure exact
(docs/design.md section 18)."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit, run_with_progress
from cli.parsing import add_command
from cli.passphrases import ENV, operator_passphrase
from storage.errors import UnpromptError
from storage.retrain_plan import lm_retrain_text
from storage.scan_proofs import coverage_text


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    retrain = add_command(
        commands, parent, "retrain",
        "retrain a model without every forgotten class and promote it: the requests waiting "
        "on it become exact", cmd_retrain)
    retrain.add_argument("model", metavar="N")
    retrain.add_argument("--request", dest="requests", action="append", default=[],
                         metavar="R", help="a request the retrain must cover (all pending "
                                           "requests on the model are batched anyway)")
    decide = retrain.add_mutually_exclusive_group()
    decide.add_argument("--accept", action="store_true",
                        help="promote a retrain held for accuracy (signed by --operator, "
                             f"who proves their passphrase, ${ENV})")
    decide.add_argument("--reject", action="store_true",
                        help="keep the live version; the held retrain is not promoted")
    retrain.add_argument("--reason", default="", help="why (needed with --accept / --reject)")


def cmd_retrain(ctx: Context) -> int:
    from engine.retrain import decide_retrain, retrain_job

    a = ctx.args
    requests = [_request_id(r) for r in a.requests]
    if a.accept or a.reject:
        if not a.reason.strip():
            raise UnpromptError("--accept / --reject need --reason")
        decided = decide_retrain(ctx.workspace.root, model_name=a.model,
                                 operator=ctx.operator, accept=a.accept, reason=a.reason,
                                 passphrase=operator_passphrase(ctx.operator))
        if a.reject:
            emit(ctx, {"model": a.model, "status": "rejected", "decision": decided},
                 lambda r: f"Held retrain of {r['model']} rejected; the live version stays.")
            return 0
    elif a.reason:
        raise UnpromptError("--reason goes with --accept or --reject")
    job = retrain_job(ctx.workspace.root, model_name=a.model, operator=ctx.operator,
                      requests=requests)
    emit(ctx, run_with_progress(ctx, job), render_retrain)
    return 0


def _request_id(text: str) -> int:
    try:
        return int(str(text).removeprefix("R").removeprefix("-"))
    except ValueError:
        raise UnpromptError(f"{text!r} is not a request id (a number)") from None


def render_retrain(r: dict[str, Any]) -> str:
    if r.get("kind") == "llm":
        return lm_retrain_text(r)
    live, new = r["retained_live"], r["retained_retrain"]
    if r["status"] != "promoted":
        return (f"Retrain of {r['model']} held: retained-class accuracy {new:.1%} against "
                f"{live:.1%} live, more than the {r['margin']:.1%} margin below it. Nothing "
                "was promoted; decide with `retrain N --accept/--reject --reason TEXT`.")
    scan = "clean" if r["residual_scan"]["clean"] else "NOT CLEAN"
    covered = ", ".join(f"#{i}" for i in r["covered"])
    return (f"Retrained {r['model']}: v{r['from_version']} -> v{r['version']} (exact) in "
            f"{r['train_seconds']:.0f} s; retained-class accuracy {live:.1%} -> {new:.1%}.\n"
            f"Purged {len(r['purged'])} artifact(s) of earlier versions; residual scan {scan} "
            f"({coverage_text(r['residual_scan'])}).\nRequests now exact: {covered}.")
