"""The code's pointers into the design document lead somewhere: the file is in this repository
and every section the code cites is a numbered heading there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
PACKAGES = ("engine", "storage", "reports", "gui", "cli", "bench", "tests")
CITATION = re.compile(r"docs/design\.md,?(?: section)? (\d+)(?:\s*[-,]\s*(\d+))?")


def _sources() -> list[Path]:
    files = [ROOT / "main.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _cited_sections() -> dict[int, str]:
    cited: dict[int, str] = {}
    for path in _sources():
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            for number in filter(None, match.groups()):
                cited.setdefault(int(number), str(path.relative_to(ROOT)))
    return cited


def test_the_design_document_is_in_the_repository() -> None:
    assert DESIGN.is_file()


def test_no_code_points_at_a_design_file_outside_the_repository() -> None:
    stale = [str(p.relative_to(ROOT)) for p in _sources()
             if re.search(r"\bDESIGN\.md", p.read_text(encoding="utf-8"))]
    assert stale == []


def test_every_cited_section_is_a_heading() -> None:
    headings = {int(n) for n in re.findall(r"^## (\d+)\. ", DESIGN.read_text(encoding="utf-8"),
                                          flags=re.M)}
    cited = _cited_sections()
    assert cited, "the code cites no section at all: the pattern above is out of date"
    missing = {number: where for number, where in cited.items() if number not in headings}
    assert missing == {}
