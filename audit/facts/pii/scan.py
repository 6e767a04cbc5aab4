"""Scanning one file (a stream or downloaded bytes) for identifiers: `FileScan` is the result.

A file that cannot be read fully is still a result: what could not be read is an error
detail, never an exception. Names that reach a result are redacted too, since a file called
`061211600012.xlsx` leaks as much as its content.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from audit.facts.documents import DeadlinePassed, DocumentUnreadable
from audit.facts.pii import readers, sheet_xml
from audit.facts.pii.archive import ZipLimits, package_format, refuse_bomb, walk_members
from audit.facts.pii.detectors import DETECTORS, NATIONAL_IDS, Detector
from audit.facts.pii.formats import (
    HEAD_BYTES,
    TEXT_FORMATS,
    FileFormat,
    encrypted_ole2,
    seven_zip_encrypted,
    sniff,
)
from audit.facts.pii.text import TextScanner
from audit.facts.pii.workbooks import WorkbookUnreadable, read_binary_workbook, read_workbook

HASH_CHUNK = 4 * 1024 * 1024
_LONG_DIGIT_RUN = re.compile(r"[0-9]{6,}")
# Several national identifiers in one file, or a header or health word beside them, make a
# leak all but certain; a lone number could still be a coincidence.
CONFIDENT_COUNT = 3


def redact_name(name: str) -> str:
    """A file or member name fit for a report: long digit runs masked like identifiers."""
    return _LONG_DIGIT_RUN.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], name)


class FileScan(BaseModel):
    """What one file holds: never a plain identifier, only counts and masked samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    format: FileFormat
    size: int
    sha256: str
    # Protected content found (encrypted archive members, an OpenPGP message...), and whether
    # the file is protected as a whole (nothing in it could be read in clear).
    protected: list[str] = []
    encrypted: bool = False
    identifiers: dict[str, int] = {}         # distinct valid identifiers by kind
    capped: list[str] = []                   # kinds whose count is a lower bound
    samples: dict[str, list[str]] = {}       # masked
    context: list[str] = []                  # header and health words seen
    suspected_unverifiable: int = 0          # numbers a spreadsheet turned into 6.1E+10
    members_scanned: int = 0
    errors: list[str] = []

    def personal_count(self, kinds: frozenset[str] | None = None) -> int:
        """Distinct identifiers of a person (national identifiers unless `kinds` says)."""
        wanted = kinds if kinds is not None else frozenset(NATIONAL_IDS)
        return sum(count for kind, count in self.identifiers.items() if kind in wanted)

    @property
    def confidence(self) -> str:
        """"high" when context or numbers make a leak certain, "medium" otherwise, "none"."""
        count = self.personal_count()
        if count == 0:
            return "none"
        return "high" if count >= CONFIDENT_COUNT or self.context else "medium"


@dataclass
class _Scan:
    scanner: TextScanner
    limits: ZipLimits
    protected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    members_scanned: int = 0
    read_in_clear: int = 0
    # The SHA-256 of the whole file when a reader hashed it on its single pass.
    sha256: str | None = None


DEFAULT_LIMITS = ZipLimits()


def scan_stream(name: str, stream: BinaryIO, limits: ZipLimits = DEFAULT_LIMITS,
                detectors: tuple[Detector, ...] = DETECTORS,
                deadline: float | None = None) -> FileScan:
    """Scan a seekable stream; never raises for what the file holds. Past `deadline` (a
    `time.monotonic()` value) the scan stops and says so among the errors."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    state = _Scan(TextScanner(detectors, deadline=deadline), limits)
    file_format = _scan_into(name, stream, size, state, depth=0)
    return _result(name, file_format, size, state.sha256 or sha256_of(stream), state)


def text_scan_result(name: str, file_format: FileFormat, size: int, sha256: str,
                     scanner: TextScanner, errors: list[str]) -> FileScan:
    """The result for a text file scanned in pieces, from the scanner they were merged
    into (`audit.facts.pii.pieces`)."""
    return _result(name, file_format, size, sha256,
                   _Scan(scanner, DEFAULT_LIMITS, errors=errors, read_in_clear=1))


def _result(name: str, file_format: FileFormat, size: int, sha256: str,
            state: _Scan) -> FileScan:
    tally = state.scanner.tally
    return FileScan(
        name=redact_name(name), format=file_format, size=size, sha256=sha256,
        protected=state.protected,
        encrypted=bool(state.protected) and state.read_in_clear == 0,
        identifiers={str(kind): count for kind, count in tally.distinct().items()},
        capped=sorted(str(kind) for kind, t in tally.kinds.items() if t.capped),
        samples={str(kind): list(t.samples) for kind, t in sorted(tally.kinds.items())},
        context=sorted(state.scanner.context),
        suspected_unverifiable=state.scanner.suspected_unverifiable,
        members_scanned=state.members_scanned, errors=state.errors)


def scan_bytes(name: str, data: bytes, limits: ZipLimits = DEFAULT_LIMITS,
               detectors: tuple[Detector, ...] = DETECTORS) -> FileScan:
    """Scan content already in memory, such as a file the web checks downloaded."""
    return scan_stream(name, io.BytesIO(data), limits, detectors)


def sha256_of(stream: BinaryIO) -> str:
    """The SHA-256 of a whole stream."""
    digest = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


Reader = Callable[[BinaryIO, int, _Scan, int], None]


def _scan_into(name: str, stream: BinaryIO, size: int, state: _Scan, depth: int) -> FileFormat:
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    file_format = sniff(head)
    try:
        if file_format is FileFormat.ZIP:
            return _scan_zip(stream, state, depth)
        _READERS[file_format](stream, size, state, depth)
    except DeadlinePassed as stop:
        if depth:
            raise             # recorded once, for the file, not once per archive member
        state.errors.append(f"{redact_name(name)}: {stop}")
    except DocumentUnreadable as unreadable:     # a PDF, DOCX or text file: the parser's words
        state.errors.append(f"{redact_name(name)}: unreadable {file_format}: {unreadable}")
    except Exception as error:   # noqa: BLE001 - a hostile file can make any parser raise
        # anything (pypdf, openpyxl, python-docx, zlib, expat each have their own errors);
        # it is a detail of this file, never a lost scan.
        state.errors.append(f"{redact_name(name)}: unreadable {file_format}: "
                            f"{type(error).__name__}: {error}")
    return file_format


def _read_text(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    digest = hashlib.sha256()
    readers.read_text(stream, state.scanner, digest)
    if depth == 0:       # read whole from the start: the file's own hash (not a member's)
        state.sha256 = digest.hexdigest()
    state.read_in_clear += 1


def _read_json(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    readers.read_json(stream, state.scanner, size)
    state.read_in_clear += 1


def _read_pdf(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    if readers.read_pdf(stream, state.scanner):
        state.read_in_clear += 1
    else:
        state.protected.append("encrypted pdf")


def _protected(label: str) -> Reader:
    def record(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
        state.protected.append(label)
    return record


def _read_seven_zip(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    if seven_zip_encrypted(stream):
        state.protected.append("encrypted 7z")
    else:
        state.errors.append("7z archive: contents not scanned (format not supported)")


def _read_ole2(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    if encrypted_ole2(stream.read(HEAD_BYTES)):
        state.protected.append("password-protected office document")
        return
    try:
        read_workbook(stream, state.scanner)       # an .xls: every cell, numbers too
    except WorkbookUnreadable:
        stream.seek(0)
        readers.read_raw_strings(stream, state.scanner)
        state.errors.append("legacy office document: only text strings read, cells stored "
                            "as numbers are not seen")
    state.read_in_clear += 1


def _skip(stream: BinaryIO, size: int, state: _Scan, depth: int) -> None:
    """Empty and unknown binary files hold no text to scan."""


def _scan_zip(stream: BinaryIO, state: _Scan, depth: int) -> FileFormat:
    with zipfile.ZipFile(stream) as package:
        refuse_bomb(package, state.limits)
        file_format = package_format(package)
        if file_format is FileFormat.XLSX:
            sheet_xml.read_xlsx(package, state.scanner)
        elif file_format is FileFormat.XLSB:
            try:
                read_binary_workbook(package, stream, state.scanner)
            except WorkbookUnreadable as unreadable:
                state.errors.append(f"binary workbook: {unreadable}")
                return file_format
        elif file_format is FileFormat.DOCX:
            readers.read_docx(stream, state.scanner)
        elif file_format in (FileFormat.ODS, FileFormat.ODT):
            _read_open_document(file_format, package, state)
        elif depth >= state.limits.max_depth:
            state.errors.append(f"archive nested deeper than {state.limits.max_depth}: "
                                f"not scanned")
            return file_format
        else:
            walk = walk_members(package, state.limits, depth,
                                lambda member, content, level: _scan_member(
                                    member, content, level, state))
            state.protected += walk.protected
            state.errors += [redact_name(error) for error in walk.errors]
            return file_format
    state.read_in_clear += 1
    return file_format


def _read_open_document(file_format: FileFormat, package: zipfile.ZipFile,
                        state: _Scan) -> None:
    """A spreadsheet from its XML; a text document, or a spreadsheet whose XML binds unusual
    prefixes, through `iterparse`."""
    if file_format is FileFormat.ODS and sheet_xml.read_ods(package, state.scanner):
        return
    readers.read_odf(package, state.scanner, state.limits.max_member_bytes)


def _scan_member(name: str, content: BinaryIO, depth: int, state: _Scan) -> None:
    size = content.seek(0, io.SEEK_END)
    content.seek(0)
    _scan_into(name, content, size, state, depth)
    state.members_scanned += 1


_READERS: dict[FileFormat, Reader] = {
    **{text_format: _read_text for text_format in TEXT_FORMATS},
    FileFormat.JSON: _read_json,
    FileFormat.PDF: _read_pdf,
    FileFormat.OPENPGP: _protected("openpgp message"),
    FileFormat.LUKS: _protected("luks volume"),
    FileFormat.SEVEN_ZIP: _read_seven_zip,
    FileFormat.OLE2: _read_ole2,
    FileFormat.EMPTY: _skip,
    FileFormat.BINARY: _skip,
}
