"""The text of untrusted documents: PDF (PDFium), DOCX (python-docx) and plain text.

One reader for the evidence probe (does a plan mention isolation?) and the personal-data
leak scanner (which identifiers does a file hold?). Each format yields its text piece by
piece (a PDF page, a DOCX paragraph, a chunk of a text file), so a caller can stream it into
a scanner or join it, within the `DocumentLimits` it gives. A document that cannot be read
raises `DocumentUnreadable` with a typed reason, never a parser's own exception. pypdf's log
records may quote the document: `audit.logs` keeps them off the terminal and out of the log.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, Protocol, TypeVar

from audit.messages import Text, english, says

# Text files are read in pieces of this size: memory stays flat whatever the file's size.
CHUNK_BYTES = 8 * 1024 * 1024
# A character is at most four bytes (UTF-8), so this many bytes hold `max_chars` characters.
BYTES_PER_CHAR = 4
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
MIB = 1024 * 1024

Source = Path | BinaryIO
P = ParamSpec("P")
Piece = TypeVar("Piece", str, bytes)


@dataclass(frozen=True)
class DocumentLimits:
    """How much of a document is read; None is no limit on that axis."""

    max_pages: int | None = None            # PDF pages
    # Text taken before reading stops (the piece that crosses it is kept whole).
    max_chars: int | None = None
    max_unpacked_bytes: int | None = None   # a DOCX is a zip: its declared expanded size
    deadline: float | None = None           # time.monotonic() value


class Unreadable(StrEnum):
    """Why a document's text was not read."""

    ENCRYPTED = "encrypted"
    TOO_LARGE = "too large"
    MALFORMED = "malformed"       # the parser failed on it, or reading it did


class DocumentUnreadable(Exception):
    """A document whose text was not read: `reason` for code, the message for people (`text`,
    a message a report can translate, or the parser's own words)."""

    def __init__(self, reason: Unreadable, message: Text, parser_error: str | None = None) -> None:
        super().__init__(english(message))
        self.reason = reason
        self.text = message
        self.parser_error = parser_error     # the type name of the parser's exception


class DeadlinePassed(Exception):
    """The time given to reading ran out; what was read so far stands."""

    def __init__(self) -> None:
        super().__init__("time limit reached: the rest of the file was not scanned")


class Digest(Protocol):
    """A hashlib object."""

    def update(self, data: bytes, /) -> None:
        """Hash more bytes."""


def check_deadline(deadline: float | None) -> None:
    """Raise DeadlinePassed once `deadline` (a `time.monotonic()` value) has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlinePassed


def _untrusted(reader: Callable[P, Iterator[Piece]]) -> Callable[P, Iterator[Piece]]:
    """Any error of the parser becomes DocumentUnreadable, naming the error."""
    @functools.wraps(reader)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Iterator[Piece]:
        try:
            yield from reader(*args, **kwargs)
        except (DocumentUnreadable, DeadlinePassed):
            raise
        # A hostile file can make pypdf, python-docx, zipfile or expat raise anything.
        except Exception as error:
            name = type(error).__name__
            raise DocumentUnreadable(Unreadable.MALFORMED, f"{name}: {error}", name) from error
    return guarded


def _bounded(pieces: Iterator[str], limits: DocumentLimits) -> Iterator[str]:
    """`pieces` until the text reaches `max_chars`; the deadline is checked before each one
    is parsed, since parsing (a PDF page) is where the time goes."""
    length = 0
    while True:
        check_deadline(limits.deadline)
        piece = next(pieces, None)
        if piece is None:
            return
        yield piece
        length += len(piece)
        if limits.max_chars is not None and length >= limits.max_chars:
            return


# PDFium is not thread-safe and the engine runs probes in threads: one document at a time.
_PDFIUM = threading.Lock()


@_untrusted
def pdf_pages(source: Source, limits: DocumentLimits) -> Iterator[str]:
    """The text of each page (PDFium, through pypdfium2: four to five times pypdf's speed on
    text PDFs, the same text). A PDF that only an owner password protects opens with the
    empty user password and is read; one that needs a password is ENCRYPTED."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]
    import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(str(source) if isinstance(source, Path) else source)
        except pdfium.PdfiumError as error:
            if pdfium_c.FPDF_GetLastError() == pdfium_c.FPDF_ERR_PASSWORD:
                raise DocumentUnreadable(Unreadable.ENCRYPTED,
                                         says("the PDF is encrypted")) from error
            raise
    try:
        count = len(document) if limits.max_pages is None else min(len(document),
                                                                    limits.max_pages)
        yield from _bounded((_page_text(document, index) for index in range(count)), limits)
    finally:
        with _PDFIUM:
            document.close()


def _page_text(document: Any, index: int) -> str:
    with _PDFIUM:
        page = document[index]
        try:
            text_page = page.get_textpage()
            # PDFium ends lines with CR LF, pypdf with LF: the evidence probe matches lines.
            text: str = text_page.get_text_range().replace("\r\n", "\n")
            text_page.close()
        finally:
            page.close()
    return text


@_untrusted
def docx_paragraphs(source: Source, limits: DocumentLimits) -> Iterator[str]:
    """Every paragraph of a Word document: footers and headers, the body, then the cells of
    its tables (nested tables too)."""
    from docx import Document

    if limits.max_unpacked_bytes is not None:
        with zipfile.ZipFile(source) as package:
            unpacked = sum(info.file_size for info in package.infolist())
        if unpacked > limits.max_unpacked_bytes:
            raise DocumentUnreadable(Unreadable.TOO_LARGE, says(
                "the DOCX unpacks to more than {size} MiB, not read",
                size=limits.max_unpacked_bytes // MIB))
    document = Document(str(source) if isinstance(source, Path) else source)
    yield from _bounded(_paragraphs(document), limits)


def _paragraphs(document: Any) -> Iterator[str]:
    containers: list[Any] = [document]
    for section in document.sections:
        containers += [section.header, section.footer]
    while containers:        # a stack, not recursion: nesting cannot exhaust the stack
        container = containers.pop()
        for paragraph in container.paragraphs:
            yield paragraph.text
        for table in container.tables:
            for row in table.rows:
                containers.extend(row.cells)


@_untrusted
def text_chunks(source: Source, limits: DocumentLimits,
                digest: Digest | None = None) -> Iterator[bytes]:
    """A text file as UTF-8 bytes, chunk by chunk; UTF-16 with a byte-order mark (Excel's
    "Unicode text") is re-encoded. `digest` is fed the raw bytes, so a file read to be scanned
    need not be read again to be hashed. At most `max_chars` characters' worth is read."""
    with _opened(source) as stream:
        decode: _Utf16Decoder | None = None
        for index, chunk in enumerate(_raw_chunks(stream, limits, digest)):
            if index == 0 and chunk.startswith(UTF16_BOMS):
                decode = _Utf16Decoder()
            yield decode(chunk) if decode else chunk
        if decode:
            yield decode(b"", final=True)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    """A path opened for reading, or the caller's stream as it is (the caller closes it)."""
    if isinstance(source, Path):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


def _raw_chunks(stream: BinaryIO, limits: DocumentLimits,
                digest: Digest | None) -> Iterator[bytes]:
    budget = None if limits.max_chars is None else limits.max_chars * BYTES_PER_CHAR
    while budget is None or budget > 0:
        check_deadline(limits.deadline)
        chunk = stream.read(CHUNK_BYTES if budget is None else min(CHUNK_BYTES, budget))
        if not chunk:
            return
        if digest is not None:
            digest.update(chunk)
        if budget is not None:
            budget -= len(chunk)
        yield chunk


class _Utf16Decoder:
    """Re-encodes a UTF-16 stream as UTF-8, piece by piece."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        return self._decoder.decode(chunk, final).encode("utf-8")
