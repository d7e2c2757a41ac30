"""The CLI chain request new -> approve -> forget --request -> audit -> certify, built once
per session for the certificate and report tests. The commands run through the CLI's
``main`` in this process (tests/cli/helpers.py ``call_cli``); ``process=True`` runs
``main.py`` in a subprocess where a test is about what a shell sees. The audit runs as a
job with small settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.jobs import run_job
from tests import approvals
from tests.audit.conftest import QUICK, trained_demo
from tests.cli.helpers import call_cli, call_json, run_cli, run_json

PASS = {"UNPROMPT_KEY_PASSPHRASE": "correct horse"}


def cli(root: Path, *args: str, env: dict[str, str] | None = None, process: bool = False,
        **kw: object):
    run = run_cli if process else call_cli
    return run(*args, "--workspace", str(root), env={**PASS, **(env or {})}, **kw)


def cli_json(root: Path, *args: str, env: dict[str, str] | None = None,
             process: bool = False) -> dict:
    run = run_json if process else call_json
    return run(*args, "--workspace", str(root), env={**PASS, **(env or {})})


def build_executed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model 'demo' (full mode: an approximate erasure), class 3 forgotten under request 1
    (approved by another operator) and audited against the retrain reference; request 2
    recorded but never approved."""
    import torch

    from engine.audit.job import audit_job

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("certify") / "ws"
    shutil.copytree(trained_demo(tmp_path_factory), root)  # trained once per session
    new = ("request", "new", "--model", "demo", "--legal-basis", "GDPR Art. 17(1)(b)")
    alice = approvals.cli_env("alice")
    cli_json(root, "operators", "add", "alice", "--operator", "alice",
             env=approvals.new_env("alice"))
    cli_json(root, "operators", "add", "bob", "--operator", "alice",
             env={**approvals.new_env("bob"), **alice})
    first = cli_json(root, *new, "--class", "3", "--subject", "subject-17",
                     "--operator", "alice", env=alice)
    cli_json(root, "request", "approve", str(first["id"]), "--operator", "bob",
             env=approvals.cli_env("bob"))
    forget = cli_json(root, "forget", "demo", "--request", str(first["id"]),
                      "--operator", "alice")
    assert forget["residual_scan"]["clean"]
    run_job(audit_job(root, "demo", reference=True, relearn=True, operator="carol",
                      **{**QUICK, "twin": True}))  # the twin: verdicts against noise
    cli_json(root, *new, "--class", "5", "--subject", "subject-18", "--operator", "alice",
             env=alice)
    return root


def build_certified(executed_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("certified") / "ws"
    shutil.copytree(executed_root, root)
    out = root.parent / "out" / "cert-1.pdf"
    result = cli_json(root, "certify", "--request", "1", "--out", str(out),
                      "--operator", "alice")
    return {"root": root, "pdf": out, "result": result}

