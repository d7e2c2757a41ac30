"""Reading a PDF back in tests: its text (pypdf) and its pages as images (pypdfium2).

Both are pure pip packages from the ``test`` extra, so the tests that read a certificate's
text run on every machine, with no poppler install.
"""

from __future__ import annotations

import io
from pathlib import Path


def pdf_text(pdf: Path | bytes) -> str:
    """Every page's text, in order, whitespace collapsed to single spaces."""
    from pypdf import PdfReader

    data = pdf if isinstance(pdf, bytes) else Path(pdf).read_bytes()
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def render_pages(pdf: bytes, scale: float = 0.5) -> list:
    """Each page rasterised to a PIL image (PDFium), as a viewer would draw it."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        return [page.render(scale=scale).to_pil() for page in document]
    finally:
        document.close()
