"""Workbooks (XLSX, OpenDocument) read from their XML directly, streamed: no cell objects, no
parse tree.

An XLSX workbook's text is the content of its shared-strings part and of the inline strings of its
sheets. Cell values of nine characters or more (`<v>`) are cut out of the XML and read as
numbers, padded back to an IIN where a leading zero was lost. That includes a formula's text
result made of digits alone (`t="str"`): the one difference from reading the cells one by one.
What is left is handed to the text scanner as it is, which finds and validates identifiers a
matrix at a time: the markup's digit runs are short (cell references, styles, shared-string
indexes). calamine and openpyxl build a Python object per cell, which held an XLSX scan to a
few MB/s.

An OpenDocument spreadsheet (`content.xml`) is read the same way: a numeric cell (one with an
`office:value`) is cut out whole, its displayed text with it, and its value read as a number.
Its markup is six bytes in seven, so the rest is first reduced to the text between its tags,
a line each, by one regex pass in C: the scanner then reads a seventh of the bytes. (In an
XLSX sheet the same pass costs more than it saves.)

Three things of the XML need care: character references (`&#1048;`, as openpyxl writes
Cyrillic) are decoded where the scanner still looks for context words; rich-text runs of a
shared string (`</t></r><r>...<t>`) are joined, so a number formatted in two halves is seen
whole; and a chunk is cut only after the end of a cell or a string, never inside a value.
"""

from __future__ import annotations

import functools
import re
import zipfile
from dataclasses import dataclass
from typing import IO

from audit.facts.pii.archive import MemberReader, open_member
from audit.facts.pii.formats import HEAD_BYTES
from audit.facts.pii.text import MAX_CARRY, TextScanner

# Inflated XML is read in chunks of this size.
CHUNK_BYTES = 1024 * 1024
# Context words are looked for in the first bytes of each part: its first thousand rows or
# so. (Decoding the character references of a whole MiB cost a tenth of a workbook's scan.)
CONTEXT_WINDOW = 256 * 1024
SHARED_STRINGS = "xl/sharedstrings.xml"
SHEETS = "xl/worksheets/"
ODS_CONTENT = "content.xml"
# The prefixes OpenDocument writers use; a document that binds others is read by `iterparse`.
ODS_NAMESPACES = (b'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"',
                  b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"')


@dataclass(frozen=True)
class _Markup:
    """The patterns of one part, for the namespace prefix it uses (`x:` or none)."""

    # A cell value that may be a number of nine digits or more: digits, a sign, a point,
    # an exponent. Shorter values (shared-string indexes among them) stay in the text.
    number: re.Pattern[bytes]
    # Rich-text runs are joined in the shared strings, where Excel writes them; a sheet's
    # inline strings are left as they are (rich ones are rare there, and looking for them
    # cost a tenth of the scan).
    rich_run: re.Pattern[bytes] | None
    # What a chunk may end with: a whole cell of a sheet, a whole shared string.
    end: bytes
    # Whether only the text between tags is scanned (markup that outweighs the text).
    text_only: bool = False


# A numeric OpenDocument cell of nine characters or more from its value on, its content with
# it: only float, percentage and currency cells carry `office:value`. (Anchored on the value,
# not on the cell's start: the search skips to it fast, and what precedes it in the tag holds
# no digits. A shorter value, an amount, stays in the text, its shown digits as short.)
_ODS_MARKUP = _Markup(
    number=re.compile(rb"office:value=\"([0-9.Ee+-]{9,24})\"[^>]*?"
                      rb"(?:/>|>.*?</table:table-cell>)", re.DOTALL),
    rich_run=None, end=b"</table:table-cell>", text_only=True)


@functools.cache
def _markup(prefix: bytes, root: bytes) -> _Markup:
    if root == b"document-content":
        return _ODS_MARKUP
    p = re.escape(prefix)
    return _Markup(
        number=re.compile(rb"<" + p + rb"v>([0-9.Ee+-]{9,24})</" + p + rb"v>"),
        rich_run=re.compile(rb"</" + p + rb"t>\s*</" + p + rb"r>\s*<" + p + rb"r>\s*(?:<" + p
                            + rb"rPr>.*?</" + p + rb"rPr>\s*)?<" + p + rb"t(?:\s[^>]*)?>",
                            re.DOTALL) if root == b"sst" else None,
        end=b"</" + prefix + (b"si>" if root == b"sst" else b"c>"))


# The root element names the prefix the part's elements carry (`<x:worksheet ...>`).
_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?(worksheet|sst|document-content)[\s>]")
_CHARACTER_REFERENCE = re.compile(rb"&#(x[0-9A-Fa-f]{1,6}|[0-9]{1,7});")
# The text between two tags (`>` may stand unescaped in XML text, `<` may not).
_TEXT_BETWEEN_TAGS = re.compile(rb">([^<]+)<")


def read_xlsx(package: zipfile.ZipFile, scanner: TextScanner) -> None:
    """The shared strings, then every sheet, of a workbook whose package `refuse_bomb` has
    judged. Text is scanned as it streams; memory stays flat whatever the sheet's size.
    Context words are looked for at the top of each part (`CONTEXT_WINDOW`): each has its
    own header."""
    for info in cell_parts(package):
        scanner.restart_context(CONTEXT_WINDOW)
        read_part(package, info, scanner)


def read_ods(package: zipfile.ZipFile, scanner: TextScanner) -> bool:
    """The cells of an OpenDocument spreadsheet; False, having read nothing, when its content
    binds other prefixes than the usual ones."""
    info = package.getinfo(ODS_CONTENT)
    with open_member(package, info) as content:
        head = content.read(HEAD_BYTES)
    if not all(namespace in head for namespace in ODS_NAMESPACES):
        return False
    scanner.restart_context(CONTEXT_WINDOW)
    read_part(package, info, scanner)
    return True


def cell_parts(package: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The parts that hold cells: the shared strings first, then the sheets."""
    return sorted((info for info in package.infolist() if _is_cell_part(info.filename)),
                  key=lambda info: info.filename.lower() != SHARED_STRINGS)


def _is_cell_part(name: str) -> bool:
    lowered = name.lower()
    return lowered == SHARED_STRINGS or (lowered.startswith(SHEETS) and
                                         lowered.endswith(".xml") and "/_rels/" not in lowered)


def read_part(package: zipfile.ZipFile, info: zipfile.ZipInfo, scanner: TextScanner,
              start: int = 0, end: int | None = None) -> None:
    """The chunks of one part from the cut at or after `start` to the cut at or after `end`
    (None: the part's end); `start` is a multiple of `CHUNK_BYTES`, `end` one too or the
    part's size. Each chunk ends at the cut
    at or after a multiple of `CHUNK_BYTES`, however far before it the reading began, so the
    pieces of a part read apart (`audit.facts.pii.pieces`) give exactly the chunks of one
    reading of the whole."""
    with open_member(package, info) as part:
        xml = _Inflated(part)
        markup = xml.markup()
        xml.skip_to(start - _Inflated.LOOKBACK)
        cut = xml.cut_at_or_after(start, markup)
        nominal = start
        while not xml.ended_before(nominal) and nominal != end:
            nominal += CHUNK_BYTES
            if end is not None:
                nominal = min(nominal, end)
            next_cut = xml.cut_at_or_after(nominal, markup)
            if next_cut > cut:
                _scan_cells(xml.take(cut, next_cut), markup, scanner)
                cut = next_cut


class _Inflated:
    """A part's XML as it is inflated, held from the last cut on.

    Only as much is inflated as the next cut needs, so that little is held past it: each
    chunk is copied once into the buffer and once out of it. (A `bytearray` cut at its
    front and grown at its end copied itself whole at each growth: a fifth of the scan.)"""

    # Bytes before a position kept to find a closing tag that ends past it.
    LOOKBACK = 16
    # A cut is looked for this far first (cells are short), as far as `MAX_CARRY` only if
    # none is there.
    NEAR = 64 * 1024

    def __init__(self, part: IO[bytes] | MemberReader) -> None:
        self._part = part
        self._data = b""
        self._start = 0                  # where in _data what is held begins
        self._base = 0                   # the part offset of _data[_start]
        self._ended = False

    def markup(self) -> _Markup:
        """The patterns for the prefix the part's root element names."""
        self._fill(HEAD_BYTES)
        root = _ROOT.search(self._data, self._start, self._start + HEAD_BYTES)
        if root is None:
            return _markup(b"", b"worksheet")
        return _markup(root.group(1) + b":" if root.group(1) else b"", root.group(2))

    def ended_before(self, offset: int) -> bool:
        """Whether the part ends before `offset`."""
        self._fill(offset + self.NEAR + self.LOOKBACK)    # what the cut at `offset` needs
        return self._ended and self._end() <= offset

    def cut_at_or_after(self, offset: int, markup: _Markup) -> int:
        """The first end of a cell or string at or after `offset`; with none in the next
        `MAX_CARRY` bytes (a giant text cell), the first end of a tag; else `offset +
        MAX_CARRY`. Whatever the offset, a later one never gives an earlier cut."""
        if offset == 0:
            return 0
        for reach in (self.NEAR, MAX_CARRY):
            self._fill(offset + reach + self.LOOKBACK)       # which may move what is held
            low = self._start + max(offset - self._base, 0)
            high = min(len(self._data), low + MAX_CARRY)
            closing = self._data.find(markup.end, max(low - len(markup.end) + 1, 0), high)
            if closing >= 0:
                return self._base + closing - self._start + len(markup.end)
        tag = self._data.find(b">", max(low - 1, 0), high)
        return self._base - self._start + (tag + 1 if tag >= 0 else high)

    def take(self, start: int, end: int) -> bytes:
        """The XML from `start` to `end`; what lies before `end` is let go."""
        at = self._start - self._base
        chunk = self._data[start + at:end + at]
        self.skip_to(end)
        return chunk

    def _end(self) -> int:
        return self._base + len(self._data) - self._start

    def _fill(self, upto: int) -> None:
        """Inflate up to `upto`, at least a sixteenth of a chunk at a time."""
        inflated: list[bytes | memoryview] = [memoryview(self._data)[self._start:]]
        end = self._end()
        while not self._ended and end < upto:
            more = self._part.read(max(upto - end, CHUNK_BYTES // 16))
            self._ended = not more
            end += len(more)
            inflated.append(more)
        if len(inflated) > 1:
            self._data, self._start = b"".join(inflated), 0

    def skip_to(self, offset: int) -> None:
        """Let go of the XML before `offset`, reading on to it: a piece that starts far into
        its part inflates what lies before it, and keeps none of it."""
        drop = min(max(offset - self._base, 0), len(self._data) - self._start)
        self._start += drop
        self._base += drop
        while self._base < offset and not self._ended:         # nothing is held here
            inflated = self._part.read(CHUNK_BYTES)
            if not inflated:
                self._ended = True
            elif self._base + len(inflated) <= offset:
                self._base += len(inflated)
            else:
                self._data, self._start = inflated, offset - self._base
                self._base = offset


def _scan_cells(xml: bytes, markup: _Markup, scanner: TextScanner) -> None:
    """Numbers read as numbers, the rest (or its text) scanned as text. One split cuts the
    numeric values out: the pieces between them are the rest, the values the numbers."""
    pieces = markup.number.split(xml)
    if len(pieces) > 1:
        scanner.scan_numbers(map(_number, pieces[1::2]))
        xml = b"".join(pieces[0::2])
    if markup.rich_run is not None:
        xml = markup.rich_run.sub(b"", xml)
    text = _text_of(xml) if markup.text_only else xml
    window = scanner.context_left
    if window and b"&#" in text[:window]:
        # Decoded where context words are looked for; a reference cut at the window's end
        # stays as it is, and so do its digits.
        text = _CHARACTER_REFERENCE.sub(_character, text[:window]) + text[window:]
    scanner.scan(text)


def _text_of(xml: bytes) -> bytes:
    """The text between the tags of a chunk, a line each. The chunk is framed by a tag's end
    and start: a chunk cut inside a giant text keeps its text at both ends."""
    return b"\n".join(_TEXT_BETWEEN_TAGS.findall(b">" + xml + b"<"))


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
