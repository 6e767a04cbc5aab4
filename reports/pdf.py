"""The report as an A4 PDF, rendered by WeasyPrint from the same HTML (and so from
results.json alone): page numbers from `@page`, the contents' page numbers from CSS
`target-counter`, DejaVu fonts (Cyrillic and Kazakh letters) embedded."""

from __future__ import annotations

import logging

from audit.model.results import RunResults
from audit.vocabulary import Lang
from reports.html import render_html


class PdfUnavailable(Exception):
    """WeasyPrint could not load the system libraries it draws with."""


def render_pdf(results: RunResults, lang: Lang = Lang.EN) -> bytes:
    """The report as PDF bytes."""
    # Imported here: WeasyPrint loads Pango and fonts, which no other format needs.
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except (ImportError, OSError) as error:
        raise PdfUnavailable("the pdf format needs Pango (Debian: apt-get install "
                             "libpango-1.0-0 libpangoft2-1.0-0)") from error

    # WeasyPrint logs every CSS property it ignores (those meant for browsers) as a warning.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=render_html(results, lang)).render()
    pdf: bytes = document.write_pdf(
        pdf_identifier=f"{results.organisation}|{results.started_at.isoformat()}".encode())
    return pdf
