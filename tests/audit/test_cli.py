"""`audit` through the CLI entry point: the JSON contract, progress on stderr, clean errors.

In-process (``cli.app.main``) rather than a subprocess: the same code path, without
re-importing torch for every call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.app import main
from cli.audit_cmds import render


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_audit_json_is_the_metrics_plus_the_run_id(audited_root: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    code, out, err = _cli(capsys, "--workspace", str(audited_root), "audit", "demo",
                          "--reference", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"scorecard", "mia_efficacy", "mia_efficacy_degenerate", "mia_efficacy_top1",
            "threshold_attacks", "forget_distinguishability_auc", "linear_probe", "relearn",
            "erasure", "erasure_statement", "reference", "audit_run", "rmia",
            "statistics"} == set(result)
    assert isinstance(result["audit_run"], int) and "lira" not in result
    assert result["statistics"]["verdict"]["verdict"] in ("pass", "fail", "inconclusive")
    assert result["erasure_statement"].startswith(("Exact", "Approximate"))
    assert "Measured against the retrain reference" in result["erasure_statement"]
    assert "recording the audit" in err and "%" in err  # progress goes to stderr


@pytest.mark.parametrize("args,fragment", [
    (["audit", "ghost"], "no model"),
    (["audit", "demo", "--lira", "1"], "at least 2"),
    (["audit", "demo", "--lira", "x"], "whole number"),
    (["audit", "demo", "--seeds", "0"], "at least 1 seed"),
    (["audit", "demo", "--seeds", "x"], "whole number"),
])
def test_audit_errors_are_one_line(audited_root: Path, capsys: pytest.CaptureFixture,
                                   args: list[str], fragment: str) -> None:
    code, out, err = _cli(capsys, "--workspace", str(audited_root), *args, "--json")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and out == "" and "Traceback" not in err
    assert lines[-1].startswith("error:") and fragment in lines[-1]
    assert sum(line.startswith("error:") for line in lines) == 1


def test_nothing_forgotten_is_a_clean_error(trained_root: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    code, _out, err = _cli(capsys, "--workspace", str(trained_root), "audit", "demo")
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: model 'demo' has no")


def test_the_text_output_is_a_table_of_both_models(audited: dict) -> None:
    text = render(audited["result"])
    assert "MIA-efficacy" in text and "relearn, 20 shot(s)" in text and "LiRA AUC" in text
    assert "retrain reference" in text.splitlines()[1]
