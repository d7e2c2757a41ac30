"""Only the worker process loads torch and touches the device (docs/design.md sections 1, 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gui_process_never_imports_torch() -> None:
    code = ("import sys, engine.worker, gui.app, gui.main_window, gui.demo; "
            "gui.demo.demo_jobs(); gui.demo.people_demo(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
