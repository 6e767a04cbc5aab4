"""A large text file or workbook scanned in pieces by several processes, with the result one
scan of the whole file would give.

Pieces are cut where the streaming scanner cuts its own chunks: right after a line end (past
`MAX_CARRY` bytes without one, after a separator), so no identifier is split by a piece
boundary and none is seen by two pieces; the pieces therefore need no overlap, and counts of
occurrences (numbers in scientific notation) stay exact. Each piece's tally keeps its values'
keyed hashes in order under a key shared by the pieces, so merging the tallies in file order
gives the whole file's distinct counts and the same masked samples. Context words are looked
for in the file's first MiB, which the first piece starts with.

A large XLSX workbook is split the same way over the inflated XML of its parts: a piece is a
stretch of one part, and each worker inflates the part from its start (inflating is several
times faster than scanning) and scans only its stretch, cut where one reading of the part
cuts its chunks (`audit.facts.pii.sheet_xml.read_part`). A piece that starts a part looks for
context words there, as one reading does at the top of each part.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from itertools import pairwise
from typing import BinaryIO

from audit.facts.documents import CHUNK_BYTES, UTF16_BOMS, DeadlinePassed
from audit.facts.pii import sheet_xml
from audit.facts.pii.archive import ZipRefused, package_format, refuse_bomb
from audit.facts.pii.detectors import DETECTORS
from audit.facts.pii.formats import HEAD_BYTES, TEXT_FORMATS, FileFormat, sniff
from audit.facts.pii.scan import DEFAULT_LIMITS, FileScan, redact_name, text_scan_result
from audit.facts.pii.text import MAX_CARRY, SEPARATORS, Tally, TextScanner

# No piece is smaller than this.
PIECE_BYTES = 32 * 1024 * 1024
# Text files of this size or more are split. Below it the split costs more than the second
# core gives back: the pool's processes take about half a second to start, and each piece
# pays again for the first 100,000 distinct values of each kind (hashed, masked, sent back
# and merged), which a scan in one pass pays once (about 0.5 s on a list of patients).
SPLIT_BYTES = 16 * PIECE_BYTES
# A ZIP package this large may be a workbook worth splitting: one whose sheets inflate to
# `SPLIT_BYTES` of XML or more (sheets inflate to 5 to 15 times their size).
WORKBOOK_MIN_BYTES = SPLIT_BYTES // 32


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of a file, or of the inflated XML of a workbook's `part`, and the
    key its tally shares with the other pieces."""

    start: int
    end: int
    key: bytes
    part: str = ""


@dataclass
class PieceScan:
    """What one piece held."""

    tally: Tally
    context: set[str] = field(default_factory=set)
    suspected_unverifiable: int = 0
    deadline_passed: bool = False


def splittable(stream: BinaryIO, size: int) -> FileFormat | None:
    """The format of a text file or XLSX workbook large enough to be split (UTF-16 is not: a
    cut could fall inside a character), None for any other file."""
    if size < min(SPLIT_BYTES, WORKBOOK_MIN_BYTES):
        return None
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    file_format = sniff(head)
    if file_format is FileFormat.ZIP:
        return FileFormat.XLSX if _large_workbook(stream) else None
    if size < SPLIT_BYTES or file_format not in TEXT_FORMATS or head.startswith(UTF16_BOMS):
        return None
    return file_format


def _large_workbook(stream: BinaryIO) -> bool:
    """An XLSX package that one reading would accept whose cells inflate to `SPLIT_BYTES`."""
    try:
        with zipfile.ZipFile(stream) as package:
            refuse_bomb(package, DEFAULT_LIMITS)
            return package_format(package) is FileFormat.XLSX and sum(
                info.file_size for info in sheet_xml.cell_parts(package)) >= SPLIT_BYTES
    except (zipfile.BadZipFile, ZipRefused, OSError):
        return False            # one reading of the file says what is wrong with it


def plan(stream: BinaryIO, size: int, key: bytes, workers: int,
         file_format: FileFormat = FileFormat.TEXT) -> list[Piece]:
    """As many pieces as workers (none under `PIECE_BYTES`) covering the file, each cut
    after a line end, or for a workbook covering the XML of its parts. Few large pieces, not
    many small ones: each piece pays anew for the first distinct values of each kind
    (hashed, masked, sent back) that a scan of the whole file pays once."""
    if file_format is FileFormat.XLSX:
        return _workbook_plan(stream, key, workers)
    length = max(PIECE_BYTES, -(-size // workers))
    cuts = [0]
    for nominal in range(length, size, length):
        if nominal > cuts[-1]:
            stream.seek(nominal)
            cut = nominal + _cut_within(stream.read(MAX_CARRY))
            if cut < size:
                cuts.append(cut)
    cuts.append(size)
    return [Piece(start, end, key) for start, end in pairwise(cuts)]


def _workbook_plan(stream: BinaryIO, key: bytes, workers: int) -> list[Piece]:
    """Stretches of each part's XML, in reading order, starting at multiples of the
    reader's chunk size (where one reading cuts too)."""
    with zipfile.ZipFile(stream) as package:
        parts = sheet_xml.cell_parts(package)
    total = sum(info.file_size for info in parts)
    length = max(PIECE_BYTES, -(-total // workers))
    return [Piece(start, end, key, info.filename) for info in parts
            for start, end in pairwise(_stretch_cuts(info.file_size, -(-info.file_size // length)))]


# Inflating a part up to where a piece starts costs about a fifth of scanning as much XML.
INFLATE_COST = 0.2


def _stretch_cuts(size: int, count: int) -> list[int]:
    """Where `count` pieces of a part of `size` bytes begin, and its end: each piece shorter
    than the one before by what its worker spends inflating the part up to its start, so
    that all cost about the same (lengths in a geometric series)."""
    ratio = 1 - INFLATE_COST
    first = size * INFLATE_COST / (1 - ratio ** count) if count > 1 else size
    cuts = [0]
    for n in range(1, count):
        nominal = int(first * (1 - ratio ** n) / INFLATE_COST)
        cut = -(-nominal // sheet_xml.CHUNK_BYTES) * sheet_xml.CHUNK_BYTES
        if cuts[-1] < cut < size:
            cuts.append(cut)
    return [*cuts, max(size, 1)]


def _cut_within(window: bytes) -> int:
    """Where in `window` a piece may end: after its first line end, else after its first
    separator, else at its end (a megabyte without either is no text)."""
    for marks in ((b"\n", b"\r"), SEPARATORS):
        found = [at for at in (window.find(mark) for mark in marks) if at >= 0]
        if found:
            return min(found) + 1
    return len(window)


def scan_piece(stream: BinaryIO, piece: Piece, deadline: float | None) -> PieceScan:
    """Scan one piece, as the streaming scanner would scan that stretch of the file."""
    scanner = TextScanner(DETECTORS, Tally(key=piece.key), deadline)
    if piece.start:
        scanner.no_context()
    elif piece.part:
        scanner.restart_context(sheet_xml.CONTEXT_WINDOW)
    try:
        if piece.part:
            with zipfile.ZipFile(stream) as package:
                sheet_xml.read_part(package, package.getinfo(piece.part), scanner, piece.start,
                               piece.end)
        else:
            _scan_text(stream, piece, scanner)
    except DeadlinePassed:
        return PieceScan(scanner.tally, scanner.context, scanner.suspected_unverifiable, True)
    return PieceScan(scanner.tally, scanner.context, scanner.suspected_unverifiable)


def _scan_text(stream: BinaryIO, piece: Piece, scanner: TextScanner) -> None:
    stream.seek(piece.start)
    left = piece.end - piece.start
    while left > 0 and (chunk := stream.read(min(CHUNK_BYTES, left))):
        left -= len(chunk)
        scanner.feed(chunk)
    scanner.finish()


def merged(name: str, file_format: FileFormat, size: int, sha256: str, key: bytes,
           scans: list[PieceScan]) -> FileScan:
    """The file's result from its pieces' scans, in file order."""
    whole = TextScanner(DETECTORS, Tally(key=key))
    for scan in scans:
        whole.tally.merge(scan.tally)
        whole.context |= scan.context
        whole.suspected_unverifiable += scan.suspected_unverifiable
    errors = [f"{redact_name(name)}: {DeadlinePassed()}"] if any(
        scan.deadline_passed for scan in scans) else []
    return text_scan_result(name, file_format, size, sha256, whole, errors)
