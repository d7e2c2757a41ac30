"""The Train screen and the first-start demo banner, driven with fake training jobs."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

import gui.train_widget
from gui.context import AppContext
from gui.demo import DemoBanner, DemoJob
from gui.train_form_widget import parse_classes
from gui.train_widget import TrainWidget, duration_text

JOBS = "tests.gui.jobs_for_tests"


@pytest.fixture()
def screen(qtbot, engine_ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> TrainWidget:  # noqa: ANN001
    monkeypatch.setattr(gui.train_widget, "TRAIN_JOB", f"{JOBS}:fake_train")
    widget = TrainWidget(engine_ctx)
    qtbot.addWidget(widget)
    widget.show()
    widget.form.mode_box.setCurrentText("full")  # these tests drive the job, not the mode
    return widget


def test_the_default_mode_is_exact_and_each_mode_says_its_kind_and_follow_up(
        qtbot, engine_ctx: AppContext) -> None:  # noqa: ANN001
    screen = TrainWidget(engine_ctx)
    qtbot.addWidget(screen)
    form = screen.form
    assert form.mode_box.currentText() == "independent"
    assert "Forgets are exact." in form.mode_note.text()
    assert "retrain follow-up" not in form.mode_note.text()
    assert not screen.train_button.isEnabled()  # it needs a backbone that never saw the data
    assert "needs a registered backbone" in screen.problem_label.text()
    form.mode_box.setCurrentText("full")
    assert "Forgets are approximate." in form.mode_note.text()
    assert "retrain follow-up" in form.mode_note.text() and screen.train_button.isEnabled()
    form.mode_box.setCurrentText("frozen")
    assert "Forgets are isolated." in form.mode_note.text()


def test_training_shows_progress_figures_and_the_result(screen: TrainWidget, qtbot) -> None:  # noqa: ANN001
    assert screen.form.name_edit.text() == "digits-1" and screen.train_button.isEnabled()
    screen.form.epochs_spin.setValue(3)
    screen.train_button.click()
    assert not screen.train_button.isEnabled() and screen.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert screen.chart.points == 6
    assert screen.figures_label.text() == ("Epoch 3 of 3 · loss 0.333 · training accuracy "
                                           "100.0% · about 0 s left")
    assert screen.result_label.text().startswith("✔ digits-1 v1 registered: test accuracy "
                                                 "90.0%")
    assert screen.progress.value() == 1000 and screen.train_button.isEnabled()


def test_cancel_stops_the_job_and_says_nothing_was_registered(screen: TrainWidget,
                                                              qtbot) -> None:  # noqa: ANN001
    screen.form.advanced_edit.setText('{"delay": 0.2}')
    screen.form.epochs_spin.setValue(50)
    screen.train_button.click()
    qtbot.waitUntil(lambda: screen.chart.points > 0, timeout=20_000)
    screen.cancel_button.click()
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert "was cancelled; nothing was registered" in screen.result_label.text()
    assert screen.train_button.isEnabled() and not screen.cancel_button.isEnabled()


def test_the_form_says_what_blocks_a_job(screen: TrainWidget) -> None:
    form = screen.form
    form.advanced_edit.setText("[1, 2]")
    assert not screen.train_button.isEnabled()
    assert "not a JSON object" in screen.problem_label.text()
    form.advanced_edit.setText("")
    form.mode_box.setCurrentText("isolated")
    assert "Isolated mode needs a registered backbone" in screen.problem_label.text()
    assert screen.pretrain_button.isEnabled()  # pretraining needs no backbone
    form.mode_box.setCurrentText("independent")
    assert "Independent mode needs a registered backbone" in screen.problem_label.text()
    form.mode_box.setCurrentText("full")
    form.name_edit.setText("")
    assert screen.problem_label.text() == "Name the model."
    assert parse_classes("0-4") == ["0-4"] and parse_classes("a, b c") == ["a", "b c"]
    assert parse_classes("  ") is None
    assert [duration_text(s) for s in (4.4, 200, 3900)] == ["4 s", "3 min 20 s", "1 h 05 min"]


def test_the_demo_banner_builds_the_demo_in_the_background(qtbot, engine_ctx: AppContext) -> None:  # noqa: ANN001
    jobs = [DemoJob("the digits classifier", f"{JOBS}:fake_train", {"name": "digits-demo"})]
    banner = DemoBanner(engine_ctx, jobs)
    qtbot.addWidget(banner)
    banner.show()
    assert banner.state == "offer" and banner.action_button.text() == "Build the demo"
    opened: list[str] = []
    banner.openScreenRequested.connect(opened.append)
    banner.action_button.click()
    assert banner.state == "building" and banner.progress.isVisible()
    qtbot.waitUntil(lambda: banner.state == "done", timeout=20_000)
    assert banner.isVisible() and "The demo is ready" in banner.text.text()
    banner.action_button.click()
    assert opened == ["Models"] and not banner.isVisible()


def test_a_failed_demo_job_is_explained_and_can_be_retried(qtbot, engine_ctx: AppContext) -> None:  # noqa: ANN001
    banner = DemoBanner(engine_ctx, [DemoJob("a model", f"{JOBS}:refuse")])
    qtbot.addWidget(banner)
    banner.action_button.click()
    qtbot.waitUntil(lambda: banner.state == "failed", timeout=20_000)
    assert banner.text.text() == ("The demo could not be built: No model 'x' in this "
                                  "workspace.")
    assert banner.action_button.text() == "Try again"


def test_an_optional_demo_part_that_fails_is_noted_and_the_demo_is_ready(
        qtbot, engine_ctx: AppContext) -> None:  # noqa: ANN001
    jobs = [DemoJob("the digits classifier", f"{JOBS}:fake_train", {"name": "digits-demo"}),
            DemoJob("the forget rule", f"{JOBS}:refuse", required=False)]
    banner = DemoBanner(engine_ctx, jobs)
    qtbot.addWidget(banner)
    states: list[str] = []
    banner.action_button.clicked.connect(lambda: states.append(banner.state))
    engine_ctx.registryChanged.connect(lambda: states.append(banner.state))
    banner.action_button.click()
    qtbot.waitUntil(lambda: banner.state == "done", timeout=20_000)
    assert "usable" in states  # the model could be forgotten while the rule was built
    assert banner.text.text().endswith("(The forget rule could not be built: No model 'x' "
                                       "in this workspace. Retry it from the Language-model "
                                       "guard screen.)")


def test_no_banner_on_a_workspace_with_models(qtbot, ctx: AppContext, seeded) -> None:  # noqa: ANN001
    banner = DemoBanner(ctx)
    qtbot.addWidget(banner)
    assert banner.state == "hidden" and banner.isHidden()


def test_a_failed_training_is_shown_in_words(screen: TrainWidget, qtbot,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(gui.train_widget, "TRAIN_JOB", f"{JOBS}:refuse")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: shown.append(text))
    screen.train_button.click()
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert shown == ["No model 'x' in this workspace."]
    assert screen.result_label.text().startswith("✘ Training digits-1 failed")


def test_the_demo_adds_the_forget_rule_once_the_engine_has_its_job() -> None:
    from gui import demo

    assert demo.job_exists("engine.image_jobs:train_model_job")
    assert not demo.job_exists("engine.image_jobs:no_such_job")
    assert not demo.job_exists("engine.no_such_module:job")
    assert demo.demo_jobs()[:2] == [demo.BACKBONE_JOB, demo.DIGITS_JOB]
    assert demo.DIGITS_JOB.kwargs["mode"] == "independent"  # exact erasure by default
    assert (demo.RULE_JOB in demo.demo_jobs()) == demo.job_exists(demo.RULE_JOB.target)


def test_a_pretrained_backbone_is_chosen_for_an_isolated_model(
        screen: TrainWidget, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(gui.train_widget, "PRETRAIN_JOB", f"{JOBS}:fake_pretrain")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *_a: (
        asked.append(text), QMessageBox.StandardButton.Yes)[1])
    screen.form.name_edit.setText("digits-backbone")
    screen.form.classes_edit.setText("0-4")
    screen.pretrain_button.click()
    assert "declared non-erasable" in asked[0]
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert screen.result_label.text().startswith("✔ Backbone digits-backbone registered")
    form = screen.form
    assert form.backbone_from_box.currentData() == "digits-backbone"
    assert form.mode_box.currentText() == "isolated" and form.name_edit.text() == "digits-1"
    assert form.train_values()["backbone_from"] == "digits-backbone"
    assert screen.train_button.isEnabled()


def test_a_training_behind_another_long_job_says_what_it_waits_for(
        screen: TrainWidget, engine_ctx: AppContext, tmp_path, qtbot) -> None:  # noqa: ANN001
    gate = tmp_path / "gate"
    ahead = engine_ctx.engine.submit(f"{JOBS}:gate", {"path": str(gate)}, kind="audit")
    screen.train_button.click()
    expected = (f"Training digits-1: waiting, after audit (job {ahead.job_id}): long jobs run "
                "one at a time…")
    qtbot.waitUntil(lambda: screen.status_label.text() == expected, timeout=10_000)
    gate.write_text("open")
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)
    assert screen.result_label.text().startswith("✔ digits-1 v1 registered")


def test_what_the_banner_suggests_during_the_build_does_not_wait_for_it(
        qtbot, engine_ctx: AppContext, tmp_path) -> None:  # noqa: ANN001
    from engine.job_classes import INTERACTIVE, job_class
    from gui.demo import SUGGESTED_JOB
    from gui.models_widget import FORGET_JOB

    gate = tmp_path / "gate"
    jobs = [DemoJob("the digits classifier", f"{JOBS}:fake_train", {"name": "digits-demo"}),
            DemoJob("the forget rule", f"{JOBS}:gate", {"path": str(gate)}, required=False)]
    banner = DemoBanner(engine_ctx, jobs)
    qtbot.addWidget(banner)
    banner.action_button.click()
    qtbot.waitUntil(lambda: banner.state == "usable", timeout=20_000)
    assert "press Forget…: it runs at once, while the forget rule is still being built" \
        in banner.text.text()
    assert SUGGESTED_JOB == FORGET_JOB and job_class(FORGET_JOB) == INTERACTIVE
    quick = engine_ctx.engine.submit(f"{JOBS}:count", {"n": 1}, lane=job_class(FORGET_JOB))
    with qtbot.waitSignal(quick.finished, timeout=10_000) as done:
        pass
    assert done.args == ["succeeded"] and banner.state == "usable"  # the build still runs
    gate.write_text("open")
    qtbot.waitUntil(lambda: banner.state == "done", timeout=20_000)
