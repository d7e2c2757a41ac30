"""The Models screen during its own long job (issue 22): a learn runs, Forget… and Evaluate
stay usable, the forget's result shows at once, the learn's progress stays on screen."""

from __future__ import annotations

from pathlib import Path

import pytest

import gui.models_widget
from gui.context import AppContext
from gui.models_widget import ModelsWidget

JOBS = "tests.gui.jobs_for_tests"


@pytest.fixture()
def screen(qtbot, engine_ctx: AppContext, seeded: dict[str, int],  # noqa: ANN001
           monkeypatch: pytest.MonkeyPatch) -> ModelsWidget:
    monkeypatch.setattr(gui.models_widget, "LEARN_JOB", f"{JOBS}:gate")
    monkeypatch.setattr(gui.models_widget, "FORGET_JOB", f"{JOBS}:fake_forget")
    widget = ModelsWidget(engine_ctx)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitUntil(lambda: engine_ctx.engine.state == "idle", timeout=30_000)
    return widget


def test_a_forget_runs_while_the_screen_learns(screen: ModelsWidget, tmp_path: Path,
                                               qtbot) -> None:  # noqa: ANN001
    gate = tmp_path / "gate"
    screen.start_learn("fashion-vit", {"class_name": "boot", "path": str(gate),
                                       "message": "epoch 1 of 10"})
    learn = screen._job
    qtbot.waitUntil(lambda: "epoch 1 of 10" in screen.result_panel.title.text()
                    or screen.result_panel.progress.isVisible(), timeout=10_000)
    assert not screen.learn_button.isEnabled()
    screen.start_forget("fashion-vit", ["coat"], None)
    qtbot.waitUntil(lambda: screen.result_panel.title.text() == "Forgot coat from fashion-vit",
                    timeout=10_000)
    assert screen.result_panel.fact("Latency") == "42 ms"
    assert screen.result_panel.fact("Erasure") == "isolated"  # docs/design.md section 4.3
    assert screen.result_panel.fact_label("Erasure").toolTip().startswith("No shared weight")
    qtbot.waitUntil(lambda: screen.background_label.text()
                    == "Learning boot in fashion-vit: epoch 1 of 10", timeout=10_000)
    assert screen.background_label.isVisible() and screen._job is learn
    with qtbot.waitSignal(learn.finished, timeout=10_000) as finished:
        learn.cancel()
    assert finished.args == ["cancelled"]
    assert screen._job is None and not screen.background_label.isVisible()
    assert screen.result_panel.title.text() == "Learning boot in fashion-vit was cancelled"
