"""The `guard` commands (docs/design.md section 8)
in-process on the tiny models, and one subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.app import main
from tests import approvals
from tests.cli.helpers import assert_clean_error, run_cli

from .test_registry import write_rule_files

TRAIN = ["--max-new-tokens", "3", "--max-evals", "2"]


def cli(capsys, ws: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--workspace", str(ws), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_json(capsys, ws: Path, *args: str):
    code, out, err = cli(capsys, ws, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def log_entries(capsys, ws: Path) -> int:
    return cli_json(capsys, ws, "log", "verify")["entries"]


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory, tiny_model_dir, tiny_encoder_dir) -> dict:
    """A workspace with the tiny model loaded and the rule 'hogwarts' trained, via the CLI."""
    folder = tmp_path_factory.mktemp("cli")
    forget, retain = write_rule_files(folder)
    ws = folder / "ws"
    outputs = {}
    for key, args in {
        "load": ["guard", "load", "--model", str(tiny_model_dir), "--encoder",
                 str(tiny_encoder_dir), "--name", "tiny"],
        "add": ["guard", "rule", "add", "hogwarts", "--forget-file", forget, "--retain-file",
                retain, *TRAIN],
    }.items():
        outputs[key] = _run_json(ws, args)
    return {"ws": ws, "forget": forget, "retain": retain, **outputs}


def _run_json(ws: Path, args: list[str]):
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--workspace", str(ws), *args, "--json"]) == 0
    return json.loads(stdout.getvalue())


@pytest.fixture()
def ws(trained_ws, tmp_path) -> Path:
    """A private copy of the trained workspace."""
    copy = tmp_path / "ws"
    shutil.copytree(trained_ws["ws"], copy)
    return copy


def test_load_and_rule_add_register_the_model_and_the_rule(trained_ws, capsys) -> None:
    assert trained_ws["load"]["registered_as"] == "tiny"
    assert trained_ws["load"]["source"] == "folder"
    rule = trained_ws["add"]
    assert rule["name"] == "hogwarts" and rule["status"] == "active" and rule["version"] == 1
    listed = cli_json(capsys, trained_ws["ws"], "guard", "rule", "list")["rules"]
    assert [(r["model"], r["name"], r["status"]) for r in listed] == [
        ("tiny", "hogwarts", "active")]
    verified = cli_json(capsys, trained_ws["ws"], "log", "verify")
    assert verified["valid"] and verified["entries"] == 2


def test_rule_disable_and_enable_write_the_log(ws, capsys) -> None:
    assert cli_json(capsys, ws, "guard", "rule", "disable", "hogwarts")["status"] == "disabled"
    code, _, err = cli(capsys, ws, "guard", "rule", "disable", "hogwarts")
    assert code == 1 and err.strip() == "error: forget rule 'hogwarts' is already disabled"
    assert cli_json(capsys, ws, "guard", "rule", "enable", "hogwarts")["status"] == "active"
    assert log_entries(capsys, ws) == 4


def test_request_is_executed_by_enable_and_verified_by_eval(ws, capsys, monkeypatch) -> None:
    cli_json(capsys, ws, "settings", "--four-eyes", "on")
    new = ("request", "new", "--model", "tiny", "--rule", "hogwarts", "--subject", "s-1",
           "--legal-basis", "GDPR Art. 17", "--operator", "bob")
    code, _, err = cli(capsys, ws, *new)  # four-eyes: the requester proves who they are
    assert code == 1 and "no operators are registered" in err
    for name, by in (("carol", "carol"), ("bob", "carol")):
        monkeypatch.setenv("UNPROMPT_NEW_OPERATOR_PASSPHRASE", approvals.passphrase_of(name))
        monkeypatch.setenv("UNPROMPT_OPERATOR_PASSPHRASE", approvals.passphrase_of(by))
        cli_json(capsys, ws, "operators", "add", name, "--operator", by)
    monkeypatch.setenv("UNPROMPT_OPERATOR_PASSPHRASE", approvals.passphrase_of("bob"))
    request = cli_json(capsys, ws, *new)
    rid = str(request["id"])
    code, _, err = cli(capsys, ws, "request", "approve", rid, "--operator", "bob")
    assert code == 1 and "four-eyes" in err
    monkeypatch.setenv("UNPROMPT_OPERATOR_PASSPHRASE", approvals.passphrase_of("carol"))
    code, _, err = cli(capsys, ws, "guard", "rule", "enable", "hogwarts", "--request", rid)
    assert code == 1 and "it cannot be executed" in err
    cli_json(capsys, ws, "request", "approve", rid, "--operator", "carol")
    enabled = cli_json(capsys, ws, "guard", "rule", "enable", "hogwarts", "--request", rid)
    assert enabled["request"] == request["id"]
    statuses = {r["id"]: r["status"] for r in cli_json(capsys, ws, "request", "list")["requests"]}
    assert statuses[request["id"]] == "executed"
    code, _, err = cli(capsys, ws, "guard", "rule", "disable", "hogwarts")
    assert code == 1 and "enforces erasure request" in err
    figures = cli_json(capsys, ws, "guard", "eval", "hogwarts", "--request", rid,
                       "--max-new-tokens", "3", "--general-sample", "2")
    assert figures["verified_requests"] == [request["id"]]
    assert {"classifier", "knowledge", "side_effects", "latency"} <= set(figures)
    statuses = {r["id"]: r["status"] for r in cli_json(capsys, ws, "request", "list")["requests"]}
    assert statuses[request["id"]] == "verified"
    assert cli_json(capsys, ws, "log", "verify")["valid"]


def test_ask_answers_one_prompt_or_a_file(ws, tmp_path, capsys) -> None:
    one = cli_json(capsys, ws, "guard", "ask", "Who founded Hogwarts?", "--max-new-tokens", "3",
                   "--unguarded")
    assert {"prompt", "flagged", "score", "rule", "answer", "unguarded_answer"} <= set(one)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Who founded Hogwarts?\n\nWhat is 2+2?\n", encoding="utf-8")
    many = cli_json(capsys, ws, "guard", "ask", "--file", str(prompts), "--max-new-tokens", "3")
    assert [a["prompt"] for a in many] == ["Who founded Hogwarts?", "What is 2+2?"]
    assert all("unguarded_answer" not in a for a in many)
    assert many[0]["answer"] == one["answer"]


@pytest.mark.parametrize("args, fragment", [
    (["guard", "rule", "add", "r", "--forget-file", "{empty}"], "no forget examples"),
    (["guard", "rule", "add", "r", "--forget-file", "{three}"], "only 3 forget examples"),
    (["guard", "rule", "add", "r", "--forget-file", "{forget}", "--model", "{missing}"],
     "does not exist"),
    (["guard", "rule", "add", "hogwarts", "--forget-file", "{forget}"], "already has"),
    (["guard", "rule", "add", "r", "--forget-file", "{nofile}"], "no rule file"),
    (["guard", "load", "--model", "{gguf}"], "not a valid gguf"),
    (["guard", "rule", "disable", "nosuch"], "no forget rule named 'nosuch'"),
    (["guard", "eval", "nosuch"], "no forget rule named 'nosuch'"),
    (["guard", "ask", "--file", "{blank}"], "holds no prompts"),
    (["guard", "ask"], "give one prompt"),
])
def test_bad_input_is_one_line_and_writes_nothing(ws, tmp_path, capsys, args, fragment) -> None:
    files = {"empty": tmp_path / "empty.txt", "three": tmp_path / "three.txt",
             "gguf": tmp_path / "broken.gguf", "missing": tmp_path / "no-model",
             "nofile": tmp_path / "absent.txt", "blank": tmp_path / "blank.txt"}
    files["empty"].write_text("\n# nothing\n", encoding="utf-8")
    files["blank"].write_text("\n  \n", encoding="utf-8")
    files["three"].write_text("a?\nb?\nc?\n", encoding="utf-8")
    files["gguf"].write_bytes(b"\x00" * 32)
    names = {k: str(v) for k, v in files.items()} | {"forget": write_rule_files(tmp_path)[0]}
    before = log_entries(capsys, ws)
    artifacts = sorted(p.name for p in (ws / "artifacts").iterdir())
    code, out, err = cli(capsys, ws, *[a.format(**names) for a in args])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and out == "" and len(errors) == 1, err
    assert err.strip().splitlines()[-1] == errors[0] and "Traceback" not in err
    assert fragment in errors[0].lower()
    assert log_entries(capsys, ws) == before
    assert sorted(p.name for p in (ws / "artifacts").iterdir()) == artifacts


def test_unknown_rule_in_a_real_process_is_a_clean_error(ws) -> None:
    result = run_cli("--workspace", str(ws), "guard", "rule", "disable", "nosuch", timeout=120)
    assert_clean_error(result, "no forget rule named 'nosuch'")


def test_demo_rule_is_added_and_trained(ws, capsys) -> None:
    rule = cli_json(capsys, ws, "guard", "rule", "add", "--demo", *TRAIN)
    assert rule["name"] == "harry-potter" and rule["model"] == "tiny"
    assert rule["examples"]["forget"] >= 60 and rule["examples"]["retain"] >= 60
    assert rule["calibration"]["n_negative"] + rule["calibration"]["n_fit_negative"] >= 400
    names = [r["name"] for r in cli_json(capsys, ws, "guard", "rule", "list")["rules"]]
    assert names == ["harry-potter", "hogwarts"]
