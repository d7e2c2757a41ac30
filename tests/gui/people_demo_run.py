"""The first-start people demo for real, through the widgets, with its wall times and
screenshots: ``python -m tests.gui.people_demo_run [FOLDER] [--times FILE.json]``.

An empty workspace; the banner builds the digits demo (the Harry Potter rule left out: a
quarter of an hour, and not what this run measures) and, ticked, the people demo; then the
banner's next steps: a request about the person it names is recorded and approved on the
Requests screen (two operators, four-eyes), which builds the person's forget rule, and the
Audits screen runs the people audit. Some 20 minutes on a CPU.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]


def main(folder: Path, times_file: Path | None) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from tests.gui.real_screenshots import empty_window

    app = QApplication.instance() or QApplication(sys.argv)
    _answer_message_boxes()
    times: dict[str, Any] = {}
    with empty_window(app, folder) as (window, shot, _tmp):
        shot("demo-banner")
        times["jobs"] = _build(app, window, shot)
        shot("demo-banner-people-done")
        times["request"] = _request_and_approve(app, window)
        times["audit"] = _audit(app, window)
        shot("audits-people-demo")
    if times_file is not None:
        times_file.write_text(json.dumps(times, indent=2) + "\n", encoding="utf-8")
    return times


def _answer_message_boxes() -> None:
    """Print a message box and press OK instead of waiting for a click (the run is
    unattended)."""
    from PySide6.QtWidgets import QMessageBox

    def shown(_parent: object, title: str, text: str, *_a: object) -> object:
        print(f"[{title}] {text}", flush=True)
        return QMessageBox.StandardButton.Ok

    for name in ("information", "warning", "critical"):
        setattr(QMessageBox, name, shown)


def _build(app: object, window: object, shot: Any) -> dict[str, float]:
    """The banner's build with the people demo ticked; each job's wall time (queued to
    finished, in order: they run one after another)."""
    from gui.demo import BACKBONE_JOB, DIGITS_JOB
    from tests.gui.real_screenshots import _wait

    banner = window.demo_banner
    banner._jobs = [BACKBONE_JOB, DIGITS_JOB]
    banner.people_check.setChecked(True)
    shot("demo-banner-people")
    started = time.monotonic()
    banner.action_button.click()
    done: dict[str, float] = {}
    seen: list[str] = []
    for job, handle in list(banner._handles):
        handle.finished.connect(lambda _s, j=job: done.setdefault(
            j.title, round(time.monotonic() - started, 1)))
        handle.progressed.connect(lambda record: seen.append(record.get("message", "")))
    _wait(app, lambda: any(m.startswith("epoch 2/") for m in seen), 3600)
    shot("demo-banner-people-building")  # 'usable': the digits model is ready meanwhile
    _wait(app, lambda: banner.state in ("done", "failed"), 3600)
    print(banner.text.text(), flush=True)
    return done


def _request_and_approve(app: object, window: object) -> float:
    """Operators alice (records) and bob (approves); the request about the banner's person;
    its approval runs the person's forget rule build in the worker."""
    from gui.demo import DEMO_PERSON, PEOPLE_MODEL
    from gui.request_dialog import DecisionDialog, RequestDialog
    from tests import approvals
    from tests.gui.real_screenshots import _wait

    with window.ctx.workspace.sessions.begin() as session:
        for name in ("alice", "bob"):
            approvals.ensure_operator(session, name)

    def record(dialog: RequestDialog) -> int:
        dialog.model_box.setCurrentIndex(dialog.model_box.findData(PEOPLE_MODEL))
        dialog.person_box.setEditText(DEMO_PERSON)
        dialog.passphrase_edit.setText(approvals.passphrase_of("alice"))
        dialog.ok_button.click()
        return dialog.result()

    def approve(dialog: DecisionDialog) -> int:
        dialog.operator_edit.setText("bob")
        dialog.passphrase_edit.setText(approvals.passphrase_of("bob"))
        dialog.ok_button.click()
        return dialog.result()

    RequestDialog.exec, DecisionDialog.exec = record, approve
    window.show_screen("Requests")
    requests = window.screen("Requests")
    requests.new_button.click()
    started = time.monotonic()
    requests.approve_button.click()
    _wait(app, lambda: _status(window, requests.selected_id()) == "executed", 900)
    return round(time.monotonic() - started, 1)


def _status(window: Any, request_id: int) -> str:
    from storage import requests as reqs

    with window.ctx.workspace.sessions() as session:
        return reqs.get_request(session, request_id).status


def _audit(app: object, window: object) -> float:
    from tests.gui.real_screenshots import _wait

    window.show_screen("Audits")
    audits = window.screen("Audits")
    audits.refresh()
    audits.request_box.setCurrentIndex(1)
    if audits.problem():
        raise RuntimeError(f"the audit cannot run: {audits.problem()}")
    started = time.monotonic()
    audits.run_button.click()
    _wait(app, lambda: audits._job is None, 1800)
    audits.tabs.setCurrentWidget(audits.people)
    print(audits.status_label.text(), flush=True)
    return round(time.monotonic() - started, 1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    times_at = sys.argv[sys.argv.index("--times") + 1] if "--times" in sys.argv else None
    if times_at in args:
        args.remove(times_at)
    result = main(Path(args[0]) if args else ROOT / "docs" / "screenshots",
                  Path(times_at) if times_at else None)
    print(json.dumps(result, indent=2))
