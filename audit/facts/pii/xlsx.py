"""XLSX workbooks read from their XML parts directly, streamed: no cell objects, no parse tree.

A workbook's text is the content of its shared-strings part and of the inline strings of its
sheets; everything else in those parts is markup whose digit runs are short (cell references,
styles, shared-string indexes), so the XML is handed to the text scanner as it is, which finds
and validates identifiers a matrix at a time. Cell values of nine characters or more (`<v>`)
are cut out of that text and read as numbers, padded back to an IIN where a leading zero was
lost. That includes a formula's text result made of digits alone (`t="str"`): the one
difference from reading the cells one by one. calamine and openpyxl build a Python object
per cell, which held an XLSX scan to a few MB/s.

Three things of the XML need care: character references (`&#1048;`, as openpyxl writes
Cyrillic) are decoded where the scanner still looks for context words; rich-text runs of one
string (`</t></r><r>...<t>`) are joined, so a number formatted in two halves is seen whole; and
a chunk is cut only after the end of a cell or a string, never inside a value.
"""

from __future__ import annotations

import functools
import re
import zipfile
from dataclasses import dataclass
from typing import IO

from audit.facts.pii.text import MAX_CARRY, TextScanner

# Inflated XML is read in chunks of this size.
CHUNK_BYTES = 1024 * 1024
SHARED_STRINGS = "xl/sharedstrings.xml"
SHEETS = "xl/worksheets/"


@dataclass(frozen=True)
class _Markup:
    """The patterns of one part, for the namespace prefix it uses (`x:` or none)."""

    # A cell value that may be a number of nine digits or more: digits, a sign, a point,
    # an exponent. Shorter values (shared-string indexes among them) stay in the text.
    number: re.Pattern[bytes]
    rich_run: re.Pattern[bytes]
    rich_marker: bytes
    # What a chunk may end with: a whole cell, a whole string.
    ends: tuple[bytes, ...]


@functools.cache
def _markup(prefix: bytes) -> _Markup:
    p = re.escape(prefix)
    return _Markup(
        number=re.compile(rb"<" + p + rb"v>([0-9.Ee+-]{9,24})</" + p + rb"v>"),
        rich_run=re.compile(rb"</" + p + rb"t>\s*</" + p + rb"r>\s*<" + p + rb"r>\s*(?:<" + p
                            + rb"rPr>.*?</" + p + rb"rPr>\s*)?<" + p + rb"t(?:\s[^>]*)?>",
                            re.DOTALL),
        rich_marker=b"<" + prefix + b"r>",
        ends=(b"</" + prefix + b"c>", b"</" + prefix + b"si>"))


# The root element names the prefix the part's elements carry (`<x:worksheet ...>`).
_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?(?:worksheet|sst)[\s>]")
_CHARACTER_REFERENCE = re.compile(rb"&#(x[0-9A-Fa-f]{1,6}|[0-9]{1,7});")


def read_xlsx(package: zipfile.ZipFile, scanner: TextScanner) -> None:
    """The shared strings, then every sheet, of a workbook whose package `refuse_bomb` has
    judged. Text is scanned as it streams; memory stays flat whatever the sheet's size."""
    parts = sorted((info for info in package.infolist() if _is_cell_part(info.filename)),
                   key=lambda info: info.filename.lower() != SHARED_STRINGS)
    for info in parts:
        with package.open(info) as part:
            _read_part(part, scanner)


def _is_cell_part(name: str) -> bool:
    lowered = name.lower()
    return lowered == SHARED_STRINGS or (lowered.startswith(SHEETS) and
                                         lowered.endswith(".xml") and "/_rels/" not in lowered)


def _read_part(part: IO[bytes], scanner: TextScanner) -> None:
    carry = b""
    markup: _Markup | None = None
    while chunk := part.read(CHUNK_BYTES):
        buffer = carry + chunk
        if markup is None:
            root = _ROOT.search(buffer)
            markup = _markup(root.group(1) + b":" if root and root.group(1) else b"")
        cut = _cut(buffer, markup)
        if cut is None:
            carry = buffer
            continue
        carry = buffer[cut:]
        _scan_cells(buffer[:cut], markup, scanner)
    if carry:
        _scan_cells(carry, markup or _markup(b""), scanner)


def _cut(buffer: bytes, markup: _Markup) -> int | None:
    """Where a chunk may end: after its last whole cell or string; past `MAX_CARRY` without
    one (a giant text cell), after its last tag; None to wait for more."""
    end = max(_end_of_last(buffer, closing) for closing in markup.ends)
    if end > 0:
        return end
    if len(buffer) <= MAX_CARRY:
        return None
    return buffer.rfind(b">") + 1 or len(buffer)


def _end_of_last(buffer: bytes, closing: bytes) -> int:
    start = buffer.rfind(closing)
    return start + len(closing) if start >= 0 else -1


def _scan_cells(xml: bytes, markup: _Markup, scanner: TextScanner) -> None:
    """Numbers read as numbers, the rest of the XML scanned as text. One split cuts the
    numeric values out: the pieces between them are the text, the values the numbers."""
    pieces = markup.number.split(xml)
    if len(pieces) > 1:
        scanner.scan_numbers(map(_number, pieces[1::2]))
        xml = b"".join(pieces[0::2])
    if markup.rich_marker in xml:
        xml = markup.rich_run.sub(b"", xml)
    if scanner.looking_for_context() and b"&#" in xml:
        xml = _CHARACTER_REFERENCE.sub(_character, xml)
    scanner.scan(xml)


def _number(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:          # "2024-01-01" (a date cell) and the like: no identifier
        return 0.0


@functools.lru_cache(maxsize=4096)
def _decoded(reference: bytes) -> bytes:
    code = int(reference[1:], 16) if reference[:1] == b"x" else int(reference)
    try:
        return chr(code).encode("utf-8")
    except (ValueError, UnicodeEncodeError):       # past U+10FFFF, or a lone surrogate
        return b" "


def _character(match: re.Match[bytes]) -> bytes:
    return _decoded(match.group(1))
