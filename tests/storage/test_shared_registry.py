"""A registry shared by several machines (docs/design.md section 12): a forget that another
machine committed is not finished from here, where its process cannot be probed."""

from __future__ import annotations

import socket
import subprocess

import pytest

from storage.models import ModelVersion
from storage.post_forget import PENDING, resume_checks
from storage.versions import NewModel, register_model
from storage.workspace import Workspace


def _pending_forget(ws: Workspace, host: str) -> int:
    """Version 1 of a model, marked as a forget killed between its commit and its scan by
    a process that is gone."""
    pid = _pid_of_finished_process()
    with ws.sessions.begin() as session:
        version = register_model(session, NewModel("shop", "image", "vit", "full", {}, {},
                                                   "s" * 64, {0: "a" * 64, 1: "b" * 64},
                                                   {0: "shirt", 1: "shoe"}, {}, "exact"),
                                 "alice")
        version.metrics = {PENDING: {"fingerprints": [], "purge": [], "request": None,
                                     "operator": "alice", "pid": pid, "host": host}}
        session.flush()
        return version.id


def _pid_of_finished_process() -> int:
    """A pid that nobody holds now (the process ended and was reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("host,resumed", [("another-desktop", False),
                                          (socket.gethostname(), True)])
def test_only_the_machine_that_ran_a_forget_resumes_it(workspace: Workspace, host: str,
                                                       resumed: bool) -> None:
    version_id = _pending_forget(workspace, host)
    assert resume_checks(workspace.root, workspace.sessions) == ([version_id] if resumed else [])
    with workspace.sessions() as session:
        metrics = session.get(ModelVersion, version_id).metrics
    assert (PENDING in metrics) is not resumed
