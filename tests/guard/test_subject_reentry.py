"""A person whose erasure is recorded on a fine-tuned model cannot be fine-tuned back into
it (docs/design.md section 14): `lm finetune` under the same name refuses a corpus that
still holds them, naming them and how to go on, before any model loads; leaving them out
fine-tunes a new version beside the retrained one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.app import main
from engine.guard import subject_jobs as jobs
from engine.guard.people import generate, write_corpus
from engine.jobs import run_job
from engine.retrain import retrain_job
from storage import finetunes
from storage.registry import live_version
from storage.workspace import Workspace
from tests.guard.finetuned import PEOPLE, copy_workspace


@pytest.fixture()
def root(crm_suppressed: Path, tmp_path: Path) -> Path:
    return copy_workspace(crm_suppressed, tmp_path / "ws")


def _finetune(root: Path, corpus: Path, model_dir: Path, *extra: str) -> int:
    return main(["--workspace", str(root), "--operator", "carol", "lm", "finetune",
                 "--corpus", str(corpus), "--name", "crm", "--base", str(model_dir),
                 "--epochs", "1", "--batch-size", "4", "--device", "cpu", *extra])


def _versions(root: Path) -> list[tuple[int, str]]:
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            return [(v.number, v.status)
                    for v in finetunes.finetuned_model(session, "crm").versions]
    finally:
        ws.close()


def test_a_person_whose_request_is_exact_is_not_fine_tuned_back_in(
        root: Path, tmp_path: Path, tiny_model_dir: Path, capsys) -> None:  # noqa: ANN001
    run_job(retrain_job(root, model_name="crm", operator="carol", device="cpu"))
    corpus = write_corpus(generate(4, 2), tmp_path / "again.jsonl")  # still holds them
    folders = sorted(p.name for p in (root / jobs.MODELS_DIR / "crm").iterdir())
    assert _finetune(root, corpus, tiny_model_dir) == 1
    error = capsys.readouterr().err
    assert error.count("error:") == 1 and "2 person(s) whose erasure is recorded" in error
    for rid, person in enumerate(PEOPLE[:2], start=1):
        assert f"{person} (request #{rid} exact)" in error
    assert f"--exclude '{PEOPLE[0]}' --exclude '{PEOPLE[1]}'" in error
    assert _versions(root) == [(1, "purged"), (2, "live")]  # nothing written
    assert sorted(p.name for p in (root / jobs.MODELS_DIR / "crm").iterdir()) == folders
    left_out = [arg for p in PEOPLE[:2] for arg in ("--exclude", p)]
    assert _finetune(root, corpus, tiny_model_dir, *left_out) == 0
    assert _versions(root) == [(1, "purged"), (2, "superseded"), (3, "live")]
    ws = Workspace.open(root)
    try:
        with ws.sessions() as session:
            live = live_version(session, finetunes.finetuned_model(session, "crm"))
            assert sorted(live.metrics["subjects"]) == sorted(PEOPLE[2:])
            assert Path(live.metrics["folder"]).name == "v3"  # not the retrained v2's
            assert (root / jobs.MODELS_DIR / "crm" / "v2").is_dir()
    finally:
        ws.close()


def test_a_suppressed_person_is_refused_too_and_checked_again_on_recording(
        root: Path) -> None:
    from storage.errors import RefusedError

    ws = Workspace.open(root)
    try:
        with ws.sessions() as session, pytest.raises(
                RefusedError, match=rf"{PEOPLE[1]} \(request #2 executed\)"):
            model = finetunes.finetuned_model(session, "crm")
            finetunes.record_finetune(session, name="crm", folder="x", corpus={},
                                      subjects={p: {"records": 2, "artifact": "a"}
                                                for p in PEOPLE[1:]},
                                      details={}, operator="carol")
        with ws.sessions() as session:
            model = finetunes.finetuned_model(session, "crm")
            assert finetunes.erased_people(session, model, PEOPLE[2:]) == {}
    finally:
        ws.close()
