"""`serve` and `token new / revoke / list`: the inference server and its bearer tokens."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.context import Context, emit, table
from cli.parsing import add_command, add_group
from storage import tokens
from storage.errors import UnpromptError


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    serve = add_command(commands, parent, "serve",
                        "serve the live models over HTTP (KServe v2 for images, OpenAI chat "
                        "for guarded language models); swaps versions as the registry changes",
                        cmd_serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8321)
    serve.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--poll-ms", type=float, default=10.0, metavar="MS",
                       help="how often the registry is checked for a new live version")
    serve.add_argument("--max-batch", type=int, default=32, metavar="N")
    serve.add_argument("--max-wait-ms", type=float, default=2.0, metavar="MS")
    serve.add_argument("--threads", type=int, metavar="N",
                       help="CPU threads for inference (default: torch's choice)")
    serve.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help="trust X-Forwarded-* headers from these proxy addresses")
    group = add_group(commands, parent, "token", "bearer tokens of the inference server")
    new = add_command(group, parent, "new", "create a token (shown once)", cmd_token_new)
    new.add_argument("--name", required=True, metavar="APP")
    new.add_argument("--scope", choices=list(tokens.SCOPES), default="predict")
    revoke = add_command(group, parent, "revoke", "revoke a token by name or id",
                         cmd_token_revoke)
    revoke.add_argument("token", metavar="NAME_OR_ID")
    add_command(group, parent, "list", "tokens (never their secret)", cmd_token_list)


def cmd_serve(ctx: Context) -> int:
    from serving.server import ServeOptions, serve_forever

    a = ctx.args
    _check_serve_options(a)
    options = ServeOptions(host=a.host, port=a.port, device=a.device, poll_ms=a.poll_ms,
                           max_batch=a.max_batch, max_wait_ms=a.max_wait_ms, access_log=True,
                           forwarded_allow_ips=a.forwarded_allow_ips, threads=a.threads)
    root = ctx.workspace.root
    serve_forever(root, options, lambda url: ctx.progress(f"serving {root} on {url} "
                                                          "(Ctrl+C to stop)"))
    return 0


def _check_serve_options(a: argparse.Namespace) -> None:
    if not 0 <= a.port <= 65535:
        raise UnpromptError(f"--port {a.port} is not a TCP port (0-65535)")
    if a.poll_ms <= 0 or a.max_wait_ms < 0 or a.max_batch < 1 or (a.threads or 1) < 1:
        raise UnpromptError("--poll-ms must be positive, --max-wait-ms at least 0, "
                            "--max-batch and --threads at least 1")
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {a.host}: other machines can reach the server; "
              "only bearer tokens protect it", file=sys.stderr)


def cmd_token_new(ctx: Context) -> int:
    with ctx.workspace.sessions.begin() as session:
        secret, row = tokens.create_token(session, ctx.args.name, ctx.args.scope, ctx.operator)
        result = {**tokens.token_dict(row), "token": secret}
    emit(ctx, result, _render_new)
    return 0


def _render_new(r: dict[str, Any]) -> str:
    return (f"Token {r['id']} for {r['name']} (scope {r['scope']}):\n{r['token']}\n"
            "It is shown only now; only its hash is stored.")


def cmd_token_revoke(ctx: Context) -> int:
    with ctx.workspace.sessions.begin() as session:
        row = tokens.revoke_token(session, ctx.args.token, ctx.operator)
        result = tokens.token_dict(row)
    emit(ctx, result, lambda r: f"Token {r['id']} ({r['name']}) revoked.")
    return 0


def cmd_token_list(ctx: Context) -> int:
    with ctx.workspace.sessions() as session:
        rows = tokens.list_tokens(session)
    emit(ctx, {"tokens": rows}, _render_list)
    return 0


def _render_list(result: dict[str, Any]) -> str:
    if not result["tokens"]:
        return "No tokens; create one with `unprompt token new --name APP`."
    rows = [[t["id"], t["name"], t["scope"], t["prefix"] + "...", t["status"],
             t["created_at"][:19]] for t in result["tokens"]]
    return table(rows, ["id", "name", "scope", "starts with", "status", "created (UTC)"])
