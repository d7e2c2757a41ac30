"""Fonts, paragraph styles and table helpers shared by the certificate pages."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Table, TableStyle

INK = colors.HexColor("#1b1f24")
MUTED = colors.HexColor("#5b6470")
ACCENT = colors.HexColor("#1f4e79")
RULE = colors.HexColor("#c9d1da")
SHADE = colors.HexColor("#eef2f6")
GOOD = colors.HexColor("#1e6b3a")
BAD = colors.HexColor("#b3261e")
PAGE_MARGIN = 20 * mm
FRAME_WIDTH = 210 * mm - 2 * PAGE_MARGIN

_SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")
_FACES = {"": "", "-Bold": "Bd", "-Oblique": "It", "-BoldOblique": "BI"}


@cache
def fonts() -> tuple[str, str]:
    """Register the text family (DejaVu Sans if installed, else reportlab's own Vera) and
    pick a monospace font for hashes; returns ``(sans, mono)`` font names."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    system = all((_SYSTEM_FONTS / f"DejaVuSans{s}.ttf").exists() for s in _FACES)
    for suffix, vera in _FACES.items():
        path = (_SYSTEM_FONTS / f"DejaVuSans{suffix}.ttf" if system
                else _vera_dir() / f"Vera{vera}.ttf")
        pdfmetrics.registerFont(TTFont(f"CertSans{suffix}", str(path)))
    for bold, italic, suffix in ((0, 0, ""), (1, 0, "-Bold"), (0, 1, "-Oblique"),
                                 (1, 1, "-BoldOblique")):
        addMapping("CertSans", bold, italic, f"CertSans{suffix}")
    mono = _SYSTEM_FONTS / "DejaVuSansMono.ttf"
    if mono.exists():
        pdfmetrics.registerFont(TTFont("CertMono", str(mono)))
        return "CertSans", "CertMono"
    return "CertSans", "Courier"


def _vera_dir() -> Path:
    import reportlab

    return Path(reportlab.__file__).parent / "fonts"


@cache
def styles() -> dict[str, ParagraphStyle]:
    """The paragraph styles of the certificate, by role."""
    sans, mono = fonts()
    base = ParagraphStyle("body", fontName=sans, fontSize=9.5, leading=13.5, textColor=INK,
                          alignment=TA_LEFT, spaceAfter=5)

    def derive(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    return {
        "body": base,
        "kicker": derive("kicker", fontSize=8, textColor=MUTED, spaceAfter=2),
        "title": derive("title", fontName=f"{sans}-Bold", fontSize=22, leading=27,
                        textColor=ACCENT, spaceAfter=8),
        "verdict": derive("verdict", fontName=f"{sans}-Bold", fontSize=13.5, leading=19),
        "h1": derive("h1", fontName=f"{sans}-Bold", fontSize=13, leading=17, textColor=ACCENT,
                     spaceBefore=10, spaceAfter=6, keepWithNext=1),
        "h2": derive("h2", fontName=f"{sans}-Bold", fontSize=10.5, leading=14, spaceBefore=8,
                     spaceAfter=4, keepWithNext=1),
        "small": derive("small", fontSize=8, leading=10.5, textColor=MUTED),
        "cell": derive("cell", fontSize=8.5, leading=11, spaceAfter=0),
        "cellhead": derive("cellhead", fontName=f"{sans}-Bold", fontSize=8.5, leading=11,
                           spaceAfter=0),
        "label": derive("label", fontSize=8.5, leading=11, textColor=MUTED, spaceAfter=0),
        "hash": derive("hash", fontName=mono, fontSize=7, leading=9, spaceAfter=0),
        "code": derive("code", fontName=mono, fontSize=6.5, leading=8, spaceAfter=0),
    }


def p(text: Any, style: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped)."""
    return Paragraph(escape(str(text)), styles()[style])


def markup(text: str, style: str = "body") -> Paragraph:
    """A paragraph whose text already holds reportlab mini-markup (<b>, <font>)."""
    return Paragraph(text, styles()[style])


def b(text: Any) -> str:
    """Escaped bold markup for use inside ``markup`` text."""
    return f"<b>{escape(str(text))}</b>"


def key_value_table(rows: list[tuple[str, Any]], widths: tuple[float, float] | None = None
                    ) -> Table:
    """Two columns: a muted label and its value (a string or a flowable)."""
    widths = widths or (42 * mm, FRAME_WIDTH - 42 * mm)
    data = [[p(label, "label"), value if not isinstance(value, str) else p(value, "cell")]
            for label, value in rows]
    table = Table(data, colWidths=list(widths), hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def grid_table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    """A table with a shaded header row and light rules; cells may be text or flowables."""
    data = [[p(h, "cellhead") for h in header]]
    data += [[c if not isinstance(c, str) else p(c, "cell") for c in row] for row in rows]
    table = Table(data, colWidths=widths, hAlign="LEFT", repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), SHADE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def page_header(canvas: Any, title: str, page: int) -> None:
    """The running head every page of a certificate or report carries: title, page number,
    and a rule under them (call between ``saveState`` and ``restoreState``)."""
    from reportlab.lib.pagesizes import A4

    width, height = A4
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(PAGE_MARGIN, height - PAGE_MARGIN + 2 * mm, width - PAGE_MARGIN,
                height - PAGE_MARGIN + 2 * mm)
    canvas.setFillColor(MUTED)
    canvas.setFont(fonts()[0], 7.5)
    canvas.drawString(PAGE_MARGIN, height - PAGE_MARGIN + 4 * mm, title)
    canvas.drawRightString(width - PAGE_MARGIN, height - PAGE_MARGIN + 4 * mm, f"Page {page}")
