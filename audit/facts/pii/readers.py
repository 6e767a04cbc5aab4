"""Readers that hand a document's text to a `TextScanner`, one per format.

Each reader takes a seekable binary stream. PDF and text files are read by
`audit.facts.documents`, the reader the evidence probe uses too: text is streamed in chunks,
PDF pages one by one. DOCX paragraphs come from `docx_text` (python-docx where it gives up).
XLSX is read from its XML by `audit.facts.pii.sheet_xml`, OpenDocument and legacy `.xls` by
`audit.facts.pii.workbooks` (calamine); OpenDocument's `iterparse` here takes the sheets too
large for calamine. Numeric cells go through `scan_numbers`, so that an IIN that lost its
leading zero is still found.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from xml.etree import ElementTree

from audit.facts import documents
from audit.facts.pii import docx_text
from audit.facts.pii.text import TextScanner

# JSON up to this size is parsed (escaped text decoded); larger JSON is scanned as text.
JSON_PARSE_LIMIT = 32 * 1024 * 1024
# Strings of a spreadsheet or document are scanned in batches of about this many bytes.
BATCH_BYTES = 256 * 1024
BATCH_NUMBERS = 64 * 1024

ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
ODF_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
ODF_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
ODF_PARAGRAPHS = frozenset({f"{ODF_TEXT}p", f"{ODF_TEXT}h"})
ODF_NUMERIC_TYPES = frozenset({"float", "percentage", "currency"})


class TextBatch:
    """Collects short strings and numeric cells and scans them together: one scan per cell
    would be slow. The numbers of a batch are scanned before its text."""

    def __init__(self, scanner: TextScanner) -> None:
        self._scanner = scanner
        self._parts: list[str] = []
        self._size = 0
        self._numbers: list[float] = []

    def add(self, text: str) -> None:
        """Queue one string."""
        self._parts.append(text)
        self._size += len(text)
        self._flush_when_full()

    def add_number(self, value: float) -> None:
        """Queue one numeric cell."""
        self._numbers.append(value)
        self._flush_when_full()

    def add_all(self, texts: list[str], numbers: list[float]) -> None:
        """Queue many strings and numeric cells at once (no call per cell)."""
        self._parts += texts
        self._size += sum(map(len, texts))
        self._numbers += numbers
        self._flush_when_full()

    def _flush_when_full(self) -> None:
        if self._size >= BATCH_BYTES or len(self._numbers) >= BATCH_NUMBERS:
            self.flush()

    def flush(self) -> None:
        """Scan what is queued; strings are kept apart by line ends."""
        if self._numbers:
            self._scanner.scan_numbers(self._numbers)
            self._numbers = []
        if self._parts:
            self._scanner.scan_str("\n".join(self._parts) + "\n")
            self._parts, self._size = [], 0


def _limits(scanner: TextScanner) -> documents.DocumentLimits:
    # Every page and every character: a leak on page 501 is still a leak. The scan's deadline
    # is what bounds the time a document may take.
    return documents.DocumentLimits(deadline=scanner.deadline)


def read_text(stream: BinaryIO, scanner: TextScanner,
              digest: documents.Digest | None = None) -> None:
    """A text file (UTF-8, or UTF-16 with a byte-order mark), streamed in chunks: memory stays
    flat whatever its size. `digest` is fed the raw bytes too, so a large file is read once,
    not once more to be hashed."""
    for chunk in documents.text_chunks(stream, _limits(scanner), digest):
        scanner.feed(chunk)
    scanner.finish()


# Bytes of one chunk repeated at the start of the next, so that a string cut by the chunk
# boundary is seen whole once (an even number keeps UTF-16 alignment).
RAW_OVERLAP = 64


def read_raw_strings(stream: BinaryIO, scanner: TextScanner) -> None:
    """Strings inside a binary file (legacy Office): 8-bit text as it is, UTF-16 text through
    its even and odd bytes, where `0\x006\x00...` becomes `06...`."""
    previous = b""
    while chunk := stream.read(documents.CHUNK_BYTES):
        window = previous + chunk
        for view in (window, window[0::2], window[1::2]):
            scanner.scan(view)
        previous = chunk[-RAW_OVERLAP:]


def read_json(stream: BinaryIO, scanner: TextScanner, size: int) -> None:
    """JSON: parsed when small enough (so escaped text is read), otherwise as text."""
    if size > JSON_PARSE_LIMIT:
        read_text(stream, scanner)
        return
    raw = stream.read(JSON_PARSE_LIMIT + 1)
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        scanner.scan(raw)
        return
    batch = TextBatch(scanner)
    for value in _json_leaves(document):
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            batch.add_number(value)
        else:
            batch.add(value)
    batch.flush()


def _json_leaves(document: Any) -> Iterator[Any]:
    pending = [document]
    while pending:           # iterative: a deeply nested document cannot exhaust the stack
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
            yield from (str(key) for key in value)
        elif isinstance(value, list):
            pending.extend(value)
        elif value is not None:
            yield value


def read_docx(stream: BinaryIO, scanner: TextScanner) -> None:
    """Paragraphs, tables (nested ones too), headers and footers of a Word document (its
    package was judged by `refuse_bomb` before), read by `docx_text`, or by python-docx
    where that reader gives up."""
    try:
        with zipfile.ZipFile(stream) as package:
            paragraphs: Iterable[str] = list(docx_text.docx_paragraphs(package))
    except Exception:  # noqa: BLE001 - what the fast reader does not expect, python-docx reads
        stream.seek(0)
        paragraphs = documents.docx_paragraphs(stream, _limits(scanner))
    batch = TextBatch(scanner)
    for paragraph in paragraphs:
        batch.add(paragraph)
    batch.flush()


def read_pdf(stream: BinaryIO, scanner: TextScanner) -> bool:
    """The text of every page; False when the PDF is encrypted and no empty password opens it."""
    batch = TextBatch(scanner)
    try:
        for page in documents.pdf_pages(stream, _limits(scanner)):
            batch.add(page)
    except documents.DocumentUnreadable as unreadable:
        if unreadable.reason is documents.Unreadable.ENCRYPTED:
            return False
        raise
    batch.flush()
    return True


def read_odf(package: zipfile.ZipFile, scanner: TextScanner, max_bytes: int) -> None:
    """An OpenDocument text or spreadsheet: paragraphs, and numeric cells as numbers."""
    info = package.getinfo("content.xml")
    if info.file_size > max_bytes:
        raise ValueError(f"content.xml is larger than {max_bytes} bytes")
    batch = TextBatch(scanner)
    with package.open(info) as content:
        for _, element in ElementTree.iterparse(content, events=("end",)):
            if element.tag in ODF_PARAGRAPHS:
                batch.add("".join(element.itertext()))
                element.clear()
            elif element.tag == f"{ODF_TABLE}table-cell":
                if element.get(f"{ODF_OFFICE}value-type") in ODF_NUMERIC_TYPES:
                    _odf_number(element.get(f"{ODF_OFFICE}value", ""), batch)
                element.clear()
    batch.flush()


def _odf_number(text: str, batch: TextBatch) -> None:
    try:
        batch.add_number(float(text))
    except ValueError:
        pass    # a malformed value is not an identifier
