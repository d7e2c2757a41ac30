"""Screenshots of the screens over a real workspace, built through the widgets:
``python -m tests.gui.real_screenshots [FOLDER] [--llm]``.

An empty workspace first (the demo banner), then a small digits model trained on the Train
screen, class 3 forgotten under an approved request, an audit with the retrain reference and
the relearn attack, and with ``--llm`` a small forget rule for the offline SmolLM2 and one
question in the guard's test console (minutes on a CPU).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"patch_size": 4, "augment": 0,
         "overrides": {"embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}}
QUESTION = "Who is Harry Potter's best friend?"


def main(folder: Path, llm: bool) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    with empty_window(app, folder) as (window, shot, tmp):
        shot("demo-banner")
        window.demo_banner.close_button.click()
        _train(app, window)
        shot("train")
        _forget(app, window)
        shot("models")
        _audit(app, window)
        shot("audits")
        window.screen("Audits").tabs.setCurrentIndex(1)
        shot("audits-membership")
        if llm:
            _guard(app, window, tmp)
            shot("guard")
            window.screen("Language-model guard").tabs.setCurrentIndex(0)
            shot("guard-rule")


@contextmanager
def empty_window(app: object, folder: Path) -> Iterator[tuple[Any, Any, Path]]:
    """The main window over an empty workspace in a temporary folder, its worker idle, on
    the Train screen: (window, shot, temporary folder); everything closed afterwards."""
    from engine.worker import DEFAULT_PROBE, EngineClient
    from gui.bridge import EngineBridge
    from gui.context import AppContext
    from gui.main_window import MainWindow
    from storage.workspace import Workspace

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "workspace")
        bridge = EngineBridge(EngineClient(probe=DEFAULT_PROBE))
        bridge.start()
        window = MainWindow(AppContext(ws, bridge))
        window.operator_edit.setText("alice")
        window.resize(1280, 820)
        window.show()
        try:
            _wait(app, lambda: bridge.state == "idle", 120)
            window.show_screen("Train")
            yield window, _shooter(app, window, folder), Path(tmp)
        finally:
            window.close()
            bridge.close()
            ws.close()


def _shooter(app: object, window: object, folder: Path):  # noqa: ANN202
    def shot(stem: str) -> None:
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(folder / f"{stem}.png"))
        print(folder / f"{stem}.png", flush=True)
    return shot


def _train(app: object, window: object) -> None:
    train = window.screen("Train")
    train.form.name_edit.setText("digits-demo")
    train.form.mode_box.setCurrentText("full")  # the flow forgets, audits, retrains
    train.form.epochs_spin.setValue(15)
    train.form.advanced_edit.setText(json.dumps(TRAIN))
    train.form.advanced_edit.setCursorPosition(0)
    train.train_button.click()
    _wait(app, lambda: train._job is None, 900)


def _forget(app: object, window: object) -> None:
    from tests import approvals

    with window.ctx.workspace.sessions.begin() as session:
        request = approvals.create_request(session, model_name="digits-demo", classes=["3"],
                                      subject_key=approvals.key_of(window.ctx.workspace),
                                      subject="customer 10442", operator="alice",
                                      legal_basis="GDPR Art. 17(1)(b): consent withdrawn")
        approvals.approve(session, request.id, "bob")
        request_id = request.id
    window.show_screen("Models")
    models = window.screen("Models")
    models.select_model("digits-demo")
    models.start_forget("digits-demo", ["3"], request_id)
    _wait(app, lambda: models._job is None, 300)
    models.select_classes(["3"])


def _audit(app: object, window: object) -> None:
    window.show_screen("Audits")
    audits = window.screen("Audits")
    audits.samples_spin.setValue(150)
    audits.epochs_spin.setValue(5)
    audits.run_button.click()
    _wait(app, lambda: audits._job is None, 900)


def _guard(app: object, window: object, tmp: Path) -> None:
    """A small part of the shipped demo rule (the whole one takes long on a CPU)."""
    from engine.guard.rules import DEMO_RULE

    rule = json.loads(DEMO_RULE.read_text(encoding="utf-8"))
    small = {**rule, "forget": rule["forget"][:24], "retain": rule["retain"][:12],
             "general": rule["general"][:6]}
    path = tmp / "harry-potter-small.json"
    path.write_text(json.dumps(small), encoding="utf-8")
    window.show_screen("Language-model guard")
    guard = window.screen("Language-model guard")
    guard._run("Training rule 'harry-potter'", "add_rule_job",
               {"operator": "alice", "name": "harry-potter", "forget_file": str(path),
                "max_known": 8, "max_evals": 4})
    _wait(app, lambda: guard._job is None, 1800)
    guard.select_rule("harry-potter")
    guard.console.prompt_edit.setText(QUESTION)
    guard.console.ask_button.click()
    _wait(app, lambda: guard._job is None, 600)


def _wait(app: object, condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the engine job took too long")
        app.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(Path(args[0]) if args else ROOT / "docs" / "screenshots", "--llm" in sys.argv)
