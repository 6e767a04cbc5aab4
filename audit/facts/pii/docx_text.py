"""The paragraphs of a Word document read straight from its XML with lxml, in the order
`audit.facts.documents.docx_paragraphs` (python-docx) gives them, at a tenth of its cost: a
small DOCX took about 8 ms to open with python-docx (every part of the package parsed into
its object model, the styles among them), which alone held a share of small files under
1,000 files/s.

The order is python-docx's, so that the first identifiers of a file, its masked samples,
are the same: headers and footers of each section (the last section's first), then the
body's paragraphs, then the cells of its tables, last cell first, nested tables the same
way. A paragraph's text is that of its runs and hyperlinks, as python-docx reads it; a
vertically merged cell is read from the cell it continues, a cell spanning columns once per
column. Anything this reader does not expect raises, and the caller falls back to python-docx.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from typing import Any

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
DOCUMENT = "word/document.xml"
RUN_TEXT = {f"{W}tab": "\t", f"{W}ptab": "\t", f"{W}cr": "\n", f"{W}noBreakHyphen": "-"}
PARAGRAPH, TABLE, ROW, CELL = f"{W}p", f"{W}tbl", f"{W}tr", f"{W}tc"


def docx_paragraphs(package: zipfile.ZipFile) -> Iterator[str]:
    """Every paragraph's text, in python-docx's order."""
    body = _parse(package, DOCUMENT).find(f"{W}body")
    if body is None:
        raise ValueError("no w:body in word/document.xml")
    containers: list[Any] = [body]
    targets = _relationships(package)
    sections = body.findall(f"{PARAGRAPH}/{W}pPr/{W}sectPr") + body.findall(f"{W}sectPr")
    linked: dict[str, Any] = {}
    for section in sections:
        for kind in ("header", "footer"):
            reference = section.find(f"{W}{kind}Reference[@{W}type='default']")
            if reference is not None:      # else linked to the previous section's
                linked[kind] = _parse(package, targets[reference.get(R_ID)])
            containers.append(linked.get(kind))
    while containers:
        container = containers.pop()
        if container is None:
            continue
        for paragraph in container.iterchildren(PARAGRAPH):
            yield _text(paragraph)
        for table in container.iterchildren(TABLE):
            for row in table.iterchildren(ROW):
                containers.extend(_row_cells(row))


def _parse(package: zipfile.ZipFile, name: str) -> Any:
    from lxml import etree  # type: ignore[import-untyped]

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(package.read(name), parser)


def _relationships(package: zipfile.ZipFile) -> dict[str | None, str]:
    rels = _parse(package, "word/_rels/document.xml.rels")
    # Targets are relative to word/, or absolute within the package ("/word/header1.xml").
    return {rel.get("Id"): posixpath.normpath(posixpath.join("/word", rel.get("Target", "")))
            .lstrip("/") for rel in rels.iterchildren(RELATIONSHIP)}


def _text(paragraph: Any) -> str:
    runs = [child for child in paragraph.iterchildren(f"{W}r", f"{W}hyperlink")]
    runs = [run for item in runs for run in
            (item.iterchildren(f"{W}r") if item.tag == f"{W}hyperlink" else (item,))]
    return "".join(_run_text(child) for run in runs for child in run.iterchildren())


def _run_text(element: Any) -> str:
    if element.tag == f"{W}t":
        return element.text or ""
    if element.tag == f"{W}br":
        return "\n" if element.get(f"{W}type", "textWrapping") == "textWrapping" else ""
    return RUN_TEXT.get(element.tag, "")


def _row_cells(row: Any) -> Iterator[Any]:
    """A row's cells as python-docx's `_Row.cells` gives them."""
    for cell in row.iterchildren(CELL):
        source = cell
        while _merge(source) == "continue":
            source = _cell_above(source)
        for _ in range(_span(source)):
            yield source


def _property(cell: Any, name: str) -> Any:
    return cell.find(f"{W}tcPr/{W}{name}")


def _merge(cell: Any) -> str | None:
    merge = _property(cell, "vMerge")
    return None if merge is None else merge.get(f"{W}val", "continue")


def _span(cell: Any) -> int:
    span = _property(cell, "gridSpan")
    return 1 if span is None else int(span.get(f"{W}val"))


def _grid_before(row: Any) -> int:
    before = row.find(f"{W}trPr/{W}gridBefore")
    return 0 if before is None else int(before.get(f"{W}val"))


def _cell_above(cell: Any) -> Any:
    row = cell.getparent()
    offset = _grid_before(row) + sum(_span(left) for left in cell.itersiblings(
        CELL, preceding=True))
    above = row.getprevious()
    while above is not None and above.tag != ROW:
        above = above.getprevious()
    if above is None:
        raise ValueError("no tr above topmost tr in w:tbl")
    remaining = offset - _grid_before(above)
    for candidate in above.iterchildren(CELL):
        if remaining == 0:
            return candidate
        if remaining < 0:
            break
        remaining -= _span(candidate)
    raise ValueError(f"no tc element at grid_offset={offset}")
