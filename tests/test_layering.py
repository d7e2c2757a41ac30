"""The core (engine, storage, reports, cli, serving) never imports Qt (docs/design.md 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ["engine", "storage", "reports", "cli", "serving"]
FORBIDDEN = ("PySide6", "pyqtgraph", "superqt", "gui")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_core_module_imports_qt() -> None:
    leaks = []
    for package in CORE:
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                if name.split(".")[0] in FORBIDDEN and not _is_gui_launcher(path, name):
                    leaks.append(f"{path.relative_to(ROOT)} imports {name}")
    assert leaks == []


def _is_gui_launcher(path: Path, name: str) -> bool:
    """cli/app.py may import gui.app lazily: that is how `main.py gui` opens the window."""
    return path == ROOT / "cli" / "app.py" and name == "gui.app"


def test_importing_the_core_loads_no_qt_module() -> None:
    code = ("import sys, importlib, pkgutil\n"
            "for pkg in ['engine', 'storage', 'reports', 'cli', 'serving']:\n"
            "    mod = importlib.import_module(pkg)\n"
            "    for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):\n"
            "        if 'migrations' in info.name: continue\n"
            "        importlib.import_module(info.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'superqt', 'gui')]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def test_import_linter_contract_is_kept() -> None:
    """The same rule, as the import-linter contract in pyproject.toml states it."""
    linter = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:]
