"""A large text file scanned in pieces by several processes, with the result one scan of the
whole file would give.

Pieces are cut where the streaming scanner cuts its own chunks: right after a line end (past
`MAX_CARRY` bytes without one, after a separator), so no identifier is split by a piece
boundary and none is seen by two pieces; the pieces therefore need no overlap, and counts of
occurrences (numbers in scientific notation) stay exact. Each piece's tally keeps its values'
keyed hashes in order under a key shared by the pieces, so merging the tallies in file order
gives the whole file's distinct counts and the same masked samples. Context words are looked
for in the file's first MiB, which the first piece starts with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import BinaryIO

from audit.facts.documents import CHUNK_BYTES, UTF16_BOMS, DeadlinePassed
from audit.facts.pii.detectors import DETECTORS
from audit.facts.pii.formats import HEAD_BYTES, TEXT_FORMATS, FileFormat, sniff
from audit.facts.pii.scan import FileScan, redact_name, text_scan_result
from audit.facts.pii.text import MAX_CARRY, SEPARATORS, Tally, TextScanner

# No piece is smaller than this.
PIECE_BYTES = 32 * 1024 * 1024
# Text files of this size or more are split. Below it the split costs more than the second
# core gives back: the pool's processes take about half a second to start, and each piece
# pays again for the first 100,000 distinct values of each kind (hashed, masked, sent back
# and merged), which a scan in one pass pays once (about 0.5 s on a list of patients).
SPLIT_BYTES = 16 * PIECE_BYTES


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of a file, and the key its tally shares with the other pieces."""

    start: int
    end: int
    key: bytes


@dataclass
class PieceScan:
    """What one piece held."""

    tally: Tally
    context: set[str] = field(default_factory=set)
    suspected_unverifiable: int = 0
    deadline_passed: bool = False


def splittable(stream: BinaryIO, size: int) -> FileFormat | None:
    """The format of a text file large enough to be split (UTF-16 is not: a cut could fall
    inside a character), None for any other file."""
    if size < SPLIT_BYTES:
        return None
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    file_format = sniff(head)
    if file_format not in TEXT_FORMATS or head.startswith(UTF16_BOMS):
        return None
    return file_format


def plan(stream: BinaryIO, size: int, key: bytes, workers: int) -> list[Piece]:
    """As many pieces as workers (none under `PIECE_BYTES`) covering the file, each cut
    after a line end. Few large pieces, not many small ones: each piece pays anew for the
    first distinct values of each kind (hashed, masked, sent back) that a scan of the whole
    file pays once."""
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
    scanner = TextScanner(DETECTORS, Tally(key=piece.key, mergeable=True), deadline)
    if piece.start:
        scanner.no_context()
    stream.seek(piece.start)
    left = piece.end - piece.start
    try:
        while left > 0 and (chunk := stream.read(min(CHUNK_BYTES, left))):
            left -= len(chunk)
            scanner.feed(chunk)
        scanner.finish()
    except DeadlinePassed:
        return PieceScan(scanner.tally, scanner.context, scanner.suspected_unverifiable, True)
    return PieceScan(scanner.tally, scanner.context, scanner.suspected_unverifiable)


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
