"""A rule build reaches progress points while its model loads and while it generates, so
the worker interleaves interactive jobs there and cancel takes effect (issue 22).

The engine worker's runner runs in this process with a pipe stand-in; a loader stand-in
blocks on an event that only the interleaved job's result opens: no timing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.guard import registry_jobs as jobs
from engine.guard import selection
from engine.guard.classifier import ENCODE_BATCH, train_classifier, train_classifier_job
from engine.guard.hook import corrupted_prompt_pass
from engine.guard.lm import encode_prompt, generate_text
from engine.jobs import CancelToken, run_job
from engine.worker import JobSpec, _Runner
from storage.models import ForgetRule
from storage.workspace import Workspace
from tests.guard.test_registry import FAST, write_rule_files

SAFETY_S = 20  # a stand-in never waits longer (a hang becomes a failure, not a stuck run)


class Pipe:
    """The worker's pipe: records events; delivers ``incoming`` when the runner polls, and
    calls ``on_event`` for every event sent."""

    def __init__(self, on_event: Any = None) -> None:
        self.events: list = []
        self.incoming: list = []
        self.on_event = on_event or (lambda event: None)

    def send(self, event: Any) -> None:
        self.events.append(event)
        self.on_event(event)

    def poll(self) -> bool:
        return bool(self.incoming)

    def recv(self) -> Any:
        return self.incoming.pop(0)

    def of(self, job: int, kind: str) -> list:
        return [e for e in self.events if e.job_id == job and e.kind == kind]


class BlockingLoader:
    """Stands in for ``load_language_model``: waits for ``release``, then loads for real."""

    def __init__(self) -> None:
        self.release, self.calls = threading.Event(), 0
        self.real = selection.load_language_model
        self.on_call = lambda: None

    def __call__(self, spec: str | None, device: str | None = "auto") -> Any:
        self.calls += 1
        self.on_call()
        if not self.release.wait(SAFETY_S):
            raise AssertionError("the load was never released")
        return self.real(spec, device)


@pytest.fixture()
def ws(tmp_path: Path, tiny_model_dir: Path, tiny_encoder_dir: Path) -> Workspace:
    """A workspace with the tiny model registered (its encoder: the tiny BERT)."""
    run_job(jobs.load_model_job(tmp_path / "ws", operator="ann", model=str(tiny_model_dir),
                                encoder=str(tiny_encoder_dir), name="tiny"))
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture()
def loader(monkeypatch: pytest.MonkeyPatch) -> BlockingLoader:
    stand_in = BlockingLoader()
    monkeypatch.setattr(selection, "load_language_model", stand_in)
    yield stand_in
    stand_in.release.set()  # let a dropped load end


def _build(ws: Workspace, job_id: int, tmp_path: Path) -> JobSpec:
    forget, retain = write_rule_files(tmp_path)
    return JobSpec(job_id, jobs.GUARD_JOBS["guard.rule_add"], {
        "workspace": str(ws.root), "operator": "ann", "name": "hogwarts", "model": "tiny",
        "forget_file": forget, "retain_file": retain, **FAST}, "guard.rule_add")


def _rules(ws: Workspace) -> int:
    with ws.sessions() as session:
        return session.scalar(select(func.count()).select_from(ForgetRule))


def _runner(pipe: Pipe) -> _Runner:
    return _Runner(pipe, {"long": CancelToken(), "interactive": CancelToken()}, "CPU")


def test_an_interactive_job_runs_while_the_rule_builds_model_loads(
        ws: Workspace, loader: BlockingLoader, tmp_path: Path) -> None:
    def on_event(event: Any) -> None:
        if event.job_id == 2 and event.kind == "result":
            loader.release.set()  # the load ends only after the interleaved job's result

    pipe = Pipe(on_event)
    listing = JobSpec(2, jobs.GUARD_JOBS["guard.rules"], {"workspace": str(ws.root)},
                      "guard.rules", "interactive")
    loader.on_call = lambda: pipe.incoming.append(listing)  # arrives once the load runs
    runner = _runner(pipe)
    try:
        runner.run(_build(ws, 1, tmp_path))
    finally:
        runner.close()
    assert pipe.of(1, "result"), [e.data for e in pipe.of(1, "error")]
    assert pipe.of(2, "result")[0].data["value"] == {"rules": []}  # listed before the build
    waiting = [e.data["message"] for e in pipe.of(1, "progress") if "waited_s" in e.data["data"]]
    assert waiting and waiting[0].startswith("loading tiny (")
    assert _rules(ws) == 1 and loader.calls == 1


def test_cancel_during_the_load_and_the_next_build_reuses_that_load(
        ws: Workspace, loader: BlockingLoader, tmp_path: Path) -> None:
    def on_event(event: Any) -> None:
        if event.kind == "progress" and "waited_s" in event.data["data"]:
            runner.tokens["long"].set()  # cancel while the load is blocked

    pipe = Pipe(on_event)
    runner = _runner(pipe)
    try:
        runner.run(_build(ws, 1, tmp_path))
        assert pipe.of(1, "finished")[0].data["status"] == "cancelled"
        assert _rules(ws) == 0 and not loader.release.is_set()  # the load still runs
        runner.tokens["long"] = CancelToken()
        pipe.on_event = lambda event: loader.release.set()
        runner.run(_build(ws, 2, tmp_path))
    finally:
        runner.close()
    assert pipe.of(2, "finished")[0].data["status"] == "succeeded"
    assert _rules(ws) == 1 and loader.calls == 1  # one load for both builds


def test_a_model_that_fails_to_load_is_one_clean_error(ws: Workspace, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    spec = _build(ws, 1, tmp_path)
    spec = JobSpec(1, spec.target, {**spec.kwargs, "model": str(broken)}, spec.kind)
    pipe = Pipe()
    runner = _runner(pipe)
    try:
        runner.run(spec)
    finally:
        runner.close()
    error = pipe.of(1, "error")[0].data
    assert error["message"].startswith(f"Could not load the language model in {broken} (")
    assert error["traceback"] == "" and _rules(ws) == 0


def test_another_threads_generation_is_not_corrupted_by_the_hook(lm) -> None:
    encoded = encode_prompt(lm, "Who founded Hogwarts?")
    plain = generate_text(lm, encoded, 6)
    outcome = {}
    with corrupted_prompt_pass(lm, lambda e: e * 0.0 + 5.0, encoded.content_mask) as hook:
        thread = threading.Thread(target=lambda: outcome.update(
            text=generate_text(lm, encoded, 6)))
        thread.start()
        thread.join()
    assert outcome["text"] == plain and hook.calls == 0


def test_a_generation_calls_its_checkpoint_after_every_token(lm) -> None:
    calls = []
    generate_text(lm, encode_prompt(lm, "Hello"), 4, lambda: calls.append(1))
    assert 1 <= len(calls) <= 4


def test_the_classifier_embeds_a_batch_at_a_time(encoder) -> None:
    sizes: list[int] = []

    def counting(texts: list[str]) -> Any:
        sizes.append(len(texts))
        return encoder(texts)

    forget = [f"question {i} about wizards and spells" for i in range(70)]
    negatives = [f"everyday question {i} about cooking" for i in range(10)]
    records: list = []
    head, calibration = run_job(train_classifier_job(counting, forget, negatives), records.append)
    assert sizes == [ENCODE_BATCH, 70 - ENCODE_BATCH, 10]
    assert [r.message for r in records][:3] == [
        f"embedding the examples {ENCODE_BATCH}/80", "embedding the examples 70/80",
        "embedding the examples 80/80"]
    same_head, same_calibration = train_classifier(encoder, forget, negatives)
    assert head.weight.equal(same_head.weight) and calibration == same_calibration
