"""The language-model guard screen with stand-in guard jobs (no language model needed)."""

from __future__ import annotations

import pytest

import gui.guard_widget
from gui.context import AppContext
from gui.guard_widget import GuardWidget
from gui.rule_editor_widget import curve_rates
from tests.gui.guard_jobs_for_tests import CALIBRATION

FORGET = [f"Who is character {i} in Harry Potter?" for i in range(9)]


@pytest.fixture()
def screen(qtbot, engine_ctx: AppContext, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    monkeypatch.setattr(gui.guard_widget, "JOBS", "tests.gui.guard_jobs_for_tests")
    errors: list[str] = []
    monkeypatch.setattr(gui.guard_widget, "show_error", lambda _p, _t, text: errors.append(text))
    widget = GuardWidget(engine_ctx)
    widget.errors = errors
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    assert errors == []


def _idle(screen: GuardWidget, qtbot) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: screen._job is None, timeout=20_000)


def test_train_a_rule_from_examples_and_read_its_threshold(screen: GuardWidget, qtbot) -> None:  # noqa: ANN001
    assert screen.model_box.count() == 0 and screen.rules.rowCount() == 0
    screen.load_button.click()
    _idle(screen, qtbot)
    assert screen.model_box.currentText() == "smollm2-135m-instruct"
    editor = screen.editor
    editor.name_edit.setText("wizards")
    assert not editor.train_button.isEnabled() and "at least 5" in editor.problem_label.text()
    editor.forget_edit.setPlainText("\n".join(FORGET))
    editor.target_spin.setValue(2.0)
    editor.train_button.click()
    _idle(screen, qtbot)
    assert screen._temp is None  # the example files are gone
    assert [r["name"] for r in screen.rules.records()] == ["wizards"]
    screen.select_rule("wizards")
    assert editor.rule["name"] == "wizards" and editor.forget_edit.isReadOnly()
    assert editor.forget_edit.toPlainText().splitlines() == FORGET
    assert editor.threshold_label.text().startswith(
        "Threshold 0.620: flags 93.0% of the forget prompts (true-positive rate) and 0.8% "
        "of other prompts (false-positive rate), measured on a calibration split the "
        "classifier never trained on: 40 forget prompts (10 written, 30 augmented variants) "
        "and 250 other prompts (235 written, 15 augmented variants)")
    assert "strictly above the threshold. The classifier was fit on 120 forget prompts (30 " \
        "written, 90 augmented variants) and 750 other prompts" in editor.threshold_label.text()
    assert editor.threshold_label.text().endswith("its rates are likely flattered.")
    editor.slider.setValue(400)
    assert editor.slider_label.text() == "at 0.400: TPR 97.0% · FPR 5.0%"
    assert "σ = 0.1400, chosen in 2 evaluations" in editor.strength_label.text()
    assert curve_rates(CALIBRATION["curve"], 0.1) == (1.0, 0.2)


def test_the_console_shows_both_answers_with_the_flag(screen: GuardWidget, qtbot) -> None:  # noqa: ANN001
    screen.load_button.click()
    _idle(screen, qtbot)
    screen.demo_button.click()
    _idle(screen, qtbot)
    assert not screen.demo_button.isEnabled()  # the demo rule exists
    console = screen.console
    console.prompt_edit.setText("Who is Harry Potter's best friend?")
    console.ask_button.click()
    _idle(screen, qtbot)
    assert console.unguarded_edit.toPlainText() == "Ron Weasley."
    assert console.guarded_edit.toPlainText() == "I am not sure who that is."
    assert console.verdict_label.text().startswith(
        "⚑ Flagged by rule 'harry-potter': score 0.910 above its threshold 0.620.")
    console.prompt_edit.setText("What is the capital of France?")
    console.ask_button.click()
    _idle(screen, qtbot)
    assert console.verdict_label.text().startswith("Not flagged (highest score 0.050)")


def test_disable_and_enable_a_rule(screen: GuardWidget, qtbot) -> None:  # noqa: ANN001
    screen.load_button.click()
    _idle(screen, qtbot)
    screen.demo_button.click()
    _idle(screen, qtbot)
    screen.select_rule("harry-potter")
    assert not screen.enable_button.isEnabled() and screen.disable_button.isEnabled()
    screen.disable_button.click()
    _idle(screen, qtbot)
    assert screen.selected_rule()["status"] == "disabled"
    assert screen.enable_button.isEnabled()
    screen.enable_button.click()
    _idle(screen, qtbot)
    assert screen.selected_rule()["status"] == "active"


def test_evaluate_shows_the_figures_in_words(screen: GuardWidget, qtbot) -> None:  # noqa: ANN001
    screen.load_button.click()
    _idle(screen, qtbot)
    screen.demo_button.click()
    _idle(screen, qtbot)
    screen.select_rule("harry-potter")
    assert screen.editor.evaluation_label.text().startswith("Not evaluated yet")
    screen.eval_button.click()
    _idle(screen, qtbot)
    assert screen.editor.evaluation_label.text() == (
        "Last evaluation (audit #1, rule version 1): the model knew 9 of 30 held-out forget "
        "prompts; "
        "guarded, it still answers 0% of those (a model ignorant of the topic: 5%). Held-out "
        "prompts flagged: 95% of forget, 10% of neighbouring and 0% of everyday ones. "
        "Unflagged answers identical to the unguarded model: 100%. The classifier takes 21 ms "
        "a prompt.")


def test_older_calibrations_and_evaluations_are_labelled_as_such() -> None:
    """A rule calibrated out-of-fold, or evaluated on training prompts too, before held-out
    calibration and scoring, says so rather than passing for held-out."""
    from gui.rule_editor_widget import evaluation_text, threshold_text

    old = {k: v for k, v in CALIBRATION.items() if not k.startswith("n_fit") and k != "method"}
    assert "out-of-fold (a rule trained before held-out calibration)" in threshold_text(old, 0.6)
    metrics = {"knowledge": {"known": 9, "evaluated": 30}, "classifier": {}}
    text = evaluation_text({"id": 1, "rule_version": 1, "metrics": metrics})
    assert "9 of 30 training and held-out forget prompts" in text
    assert "predates held-out scoring" in text


def test_a_rule_is_disabled_while_another_rule_builds(screen: GuardWidget,
                                                      qtbot) -> None:  # noqa: ANN001
    from tests.gui.guard_jobs_for_tests import GATE

    screen.load_button.click()
    _idle(screen, qtbot)
    screen.demo_button.click()
    _idle(screen, qtbot)
    gate = screen.ctx.workspace.root / GATE
    gate.write_text("hold")
    screen.editor.name_edit.setText("wizards")
    screen.editor.forget_edit.setPlainText("\n".join(FORGET))
    screen.editor.train_button.click()
    qtbot.waitUntil(lambda: screen.status_label.text()
                    == "Training rule 'wizards': waiting for the test's gate", timeout=10_000)
    assert not screen.load_button.isEnabled() and not screen.editor.isEnabled()
    screen.select_rule("harry-potter")
    assert screen.disable_button.isEnabled()  # an interactive job: not held by the build
    screen.disable_button.click()
    qtbot.waitUntil(lambda: (screen.selected_rule() or {}).get("status") == "disabled",
                    timeout=10_000)
    assert "long" in screen._jobs  # the build is still held at its gate
    gate.unlink()
    _idle(screen, qtbot)
    assert sorted(r["name"] for r in screen.rules.records()) == ["harry-potter", "wizards"]


def test_a_person_rule_says_what_it_ablates_not_a_strength():
    from gui.rule_editor_widget import _strength_text

    rule = {"corruption": "recall_ablation", "sigma": 0.0,
            "calibration": {"layers": [1, 6]}}
    text = _strength_text(rule)
    assert "layers 1 to 5" in text and "σ" not in text
    text = _strength_text({**rule, "corruption": "pseudonym"})
    assert text.startswith("Pseudonym: each part of the person's name") and "layers 1 to 5" in text
    assert "σ = 0.1200" in _strength_text({"corruption": "gaussian_first_n", "sigma": 0.12})
