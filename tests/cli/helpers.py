"""Run the CLI as an operator would: in this process through ``cli.app.main`` (fast: torch
and the command modules are imported once per session), or in a real subprocess where a
test is about the process boundary itself (exit status, nothing but one line on stderr)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: int = 300, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """``main.py`` in a subprocess: the exit status and streams a shell would see."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=full_env)


def run_json(*args: str, **kwargs: Any) -> Any:
    result = run_cli(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def call_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``cli.app.main`` in this process, with ``env`` added to the environment for the call;
    the result looks like ``run_cli``'s (an argparse exit becomes the return code)."""
    from cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["unprompt", *args], code, out.getvalue(),
                                       err.getvalue())


def call_json(*args: str, **kwargs: Any) -> Any:
    result = call_cli(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_clean_error(result: subprocess.CompletedProcess, fragment: str = "") -> None:
    """A bad input: non-zero exit, one error line (after any progress lines), no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert fragment.lower() in errors[0].lower()
