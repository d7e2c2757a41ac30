"""`operators add / list / check` and signed `request approve / reject` from the CLI, as a
script runs them: passphrases from the environment, no terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli.app import main
from storage.models import ClassEntry, Model
from storage.workspace import Workspace
from tests.approvals import passphrase_of

NEW_ENV, ENV = "UNPROMPT_NEW_OPERATOR_PASSPHRASE", "UNPROMPT_OPERATOR_PASSPHRASE"


@pytest.fixture()
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with an image model 'shop' (class 'shoe'); stdin is not a terminal."""
    with workspace.sessions.begin() as session:
        model = Model(name="shop", kind="image", backbone="vit", training_mode="full")
        session.add(model)
        session.flush()
        session.add(ClassEntry(model_id=model.id, label_index=0, display_name="shoe"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(NEW_ENV, raising=False)
    return workspace.root


def run(capsys, monkeypatch, ws: Path, *args: str, passphrase: str | None = None,
        new: str | None = None) -> tuple[int, str, str]:
    for name, value in ((ENV, passphrase), (NEW_ENV, new)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    code = main(["--workspace", str(ws), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(code: int, err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err


def test_operators_are_added_by_proven_operators(ws, capsys, monkeypatch) -> None:
    code, out, _ = run(capsys, monkeypatch, ws, "operators", "list")
    assert code == 0 and "add the first" in out
    one_error(*run(capsys, monkeypatch, ws, "operators", "add", "ann")[::2],
              f"the new passphrase of 'ann' is missing: set {NEW_ENV}")
    code, out, _ = run(capsys, monkeypatch, ws, "operators", "add", "ann", "--operator", "ann",
                       new=passphrase_of("ann"))
    assert code == 0 and out.strip() == "Operator ann added by ann."
    one_error(*run(capsys, monkeypatch, ws, "operators", "add", "ben", "--operator", "ann",
                   new=passphrase_of("ben"))[::2], f"must prove their passphrase: set {ENV}")
    one_error(*run(capsys, monkeypatch, ws, "operators", "add", "ben", "--operator", "ann",
                   new=passphrase_of("ben"), passphrase="guess1234")[::2],
              "wrong passphrase for operator 'ann'")
    one_error(*run(capsys, monkeypatch, ws, "operators", "add", "ben", "--operator", "ben",
                   new=passphrase_of("ben"), passphrase=passphrase_of("ben"))[::2],
              "operator 'ben' is not registered")
    code, _, err = run(capsys, monkeypatch, ws, "operators", "add", "ben", "--operator", "ann",
                       new=passphrase_of("ben"), passphrase=passphrase_of("ann"))
    assert code == 0, err
    code, out, _ = run(capsys, monkeypatch, ws, "operators", "list", "--json")
    assert [o["name"] for o in json.loads(out)["operators"]] == ["ann", "ben"]
    assert passphrase_of("ben") not in out


def _setup(capsys, monkeypatch, ws: Path) -> tuple[str, str]:
    """Operators ann and ben; two requests recorded by ann."""
    run(capsys, monkeypatch, ws, "operators", "add", "ann", "--operator", "ann",
        new=passphrase_of("ann"))
    run(capsys, monkeypatch, ws, "operators", "add", "ben", "--operator", "ann",
        new=passphrase_of("ben"), passphrase=passphrase_of("ann"))
    ids = []
    for subject in ("ticket-4711", "ticket-4712"):
        code, out, err = run(capsys, monkeypatch, ws, "request", "new", "--model", "shop",
                             "--class", "shoe", "--subject", subject, "--legal-basis",
                             "GDPR Art. 17", "--operator", "ann", "--json",
                             passphrase=passphrase_of("ann"))
        assert code == 0, err
        ids.append(str(json.loads(out)["id"]))
    return ids[0], ids[1]


def test_approval_needs_a_registered_operator_who_proves_the_passphrase(
        ws, capsys, monkeypatch) -> None:
    rid, other = _setup(capsys, monkeypatch, ws)
    approve = ("request", "approve", rid)
    one_error(*run(capsys, monkeypatch, ws, *approve, "--operator", "mallory",
                   passphrase="mallory pass")[::2], "operator 'mallory' is not registered")
    one_error(*run(capsys, monkeypatch, ws, *approve, "--operator", "ben")[::2],
              f"operator 'ben' must prove their passphrase: set {ENV} or run in a terminal")
    one_error(*run(capsys, monkeypatch, ws, *approve, "--operator", "ben",
                   passphrase=passphrase_of("ann"))[::2], "wrong passphrase for operator 'ben'")
    one_error(*run(capsys, monkeypatch, ws, *approve, "--operator", "ann",
                   passphrase=passphrase_of("ann"))[::2], "four-eyes is on")
    code, out, err = run(capsys, monkeypatch, ws, *approve, "--operator", "ben",
                         passphrase=passphrase_of("ben"))
    assert code == 0 and out.strip() == f"Request {rid} approved by ben.", err
    one_error(*run(capsys, monkeypatch, ws, "request", "reject", other, "--reason", "dup",
                   "--operator", "ben", passphrase="guess1234")[::2], "wrong passphrase")
    code, _, err = run(capsys, monkeypatch, ws, "request", "reject", other, "--reason", "dup",
                       "--operator", "ben", passphrase=passphrase_of("ben"))
    assert code == 0, err
    for request, action in ((rid, "approved"), (other, "rejected")):
        code, out, _ = run(capsys, monkeypatch, ws, "operators", "check", request,
                           "--action", action, passphrase=passphrase_of("ben"))
        assert code == 0 and out.strip() == (f"Request {request}: request.{action} signed by "
                                              "ben; it verifies.")
    one_error(*run(capsys, monkeypatch, ws, "operators", "check", rid,
                   passphrase="guess1234")[::2], "wrong passphrase for operator 'ben'")
    code, out, _ = run(capsys, monkeypatch, ws, "log", "verify", "--json")
    assert json.loads(out)["valid"]


NEW = ("request", "new", "--model", "shop", "--class", "shoe", "--subject", "t-1",
       "--legal-basis", "GDPR Art. 17")


def test_a_request_is_recorded_only_by_a_proven_operator(ws, capsys, monkeypatch) -> None:
    _setup(capsys, monkeypatch, ws)  # requests 1 and 2, recorded by ann
    one_error(*run(capsys, monkeypatch, ws, *NEW, "--operator", "mallory",
                   passphrase="mallory pass")[::2],
              "four-eyes is on, so whoever records a request must prove who they are: "
              "operator 'mallory' is not registered")
    one_error(*run(capsys, monkeypatch, ws, *NEW, "--operator", "ben")[::2],
              f"operator 'ben' must prove their passphrase: set {ENV}")
    one_error(*run(capsys, monkeypatch, ws, *NEW, "--operator", "ben",
                   passphrase=passphrase_of("ann"))[::2], "wrong passphrase for operator 'ben'")
    code, out, _ = run(capsys, monkeypatch, ws, "request", "list", "--json")
    assert [r["requested_by"] for r in json.loads(out)["requests"]] == ["ann", "ann"]
    code, out, _ = run(capsys, monkeypatch, ws, "operators", "check", "1", "--action",
                       "received", passphrase=passphrase_of("ann"))
    assert code == 0 and out.strip() == "Request 1: request.received signed by ann; it verifies."


def test_an_unproven_request_is_not_approved_under_four_eyes(ws, capsys, monkeypatch) -> None:
    _setup(capsys, monkeypatch, ws)
    run(capsys, monkeypatch, ws, "settings", "--four-eyes", "off", "--operator", "ann",
        passphrase=passphrase_of("ann"))
    code, out, err = run(capsys, monkeypatch, ws, *NEW, "--operator", "ghost", "--json")
    assert code == 0, err
    rid = str(json.loads(out)["id"])
    run(capsys, monkeypatch, ws, "settings", "--four-eyes", "on", "--operator", "ann")
    one_error(*run(capsys, monkeypatch, ws, "request", "approve", rid, "--operator", "ben",
                   passphrase=passphrase_of("ben"))[::2],
              f"four-eyes is on: request {rid} was recorded by 'ghost' without proof")
    one_error(*run(capsys, monkeypatch, ws, "operators", "check", rid, "--action",
                   "received", passphrase=passphrase_of("ben"))[::2],
              f"request {rid} has no signed request.received entry")


def test_turning_four_eyes_off_needs_a_proven_operator(ws, capsys, monkeypatch) -> None:
    code, out, _ = run(capsys, monkeypatch, ws, "settings", "--json")
    assert json.loads(out)["four_eyes"] is True  # a new workspace
    run(capsys, monkeypatch, ws, "operators", "add", "ann", "--operator", "ann",
        new=passphrase_of("ann"))
    one_error(*run(capsys, monkeypatch, ws, "settings", "--four-eyes", "off",
                   "--operator", "ann", passphrase="guess1234")[::2], "wrong passphrase")
    one_error(*run(capsys, monkeypatch, ws, "settings", "--four-eyes", "off",
                   "--operator", "zed", passphrase="guess1234")[::2], "not registered")
    code, out, _ = run(capsys, monkeypatch, ws, "settings", "--four-eyes", "off", "--json",
                       "--operator", "ann", passphrase=passphrase_of("ann"))
    assert code == 0 and json.loads(out)["four_eyes"] is False
    code, out, _ = run(capsys, monkeypatch, ws, "settings", "--four-eyes", "on", "--json",
                       "--operator", "zed")
    assert code == 0 and json.loads(out)["four_eyes"] is True
