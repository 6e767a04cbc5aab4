"""Finding identifiers in text: a streaming scanner over bytes and the tally it fills.

The scanner works on bytes, not str: the digit runs of a chunk are found and validated a
matrix at a time (`audit.facts.pii.candidates`), so no Python code runs per byte and little
per candidate, which is what keeps a 1 GB CSV fast. Values
found are deduplicated by a keyed hash whose key lives only in this process, so the only
plain values that leave this module are masked samples.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from audit.facts.documents import check_deadline
from audit.facts.pii.candidates import valid_runs
from audit.facts.pii.detectors import DETECTORS, Detector, Kind, kinds_of, mask
from audit.facts.pii.digits import exponent_marks

MAX_SAMPLES = 3
# Distinct values remembered per kind and file; past it the count is a lower bound, which is
# proof enough of a leak and keeps memory flat whatever the file holds.
MAX_DISTINCT = 100_000
# Numeric cells worth a look: 9 to 12 digits (an IIN of someone born in January 2000,
# `000115...`, keeps only nine).
SHORTEST_NUMBER, LONGEST_NUMBER = 10 ** 8, 10 ** 12
# Context keywords are looked for in the first few MiB only: a header is at the top.
CONTEXT_WINDOW = 1024 * 1024
# A chunk is cut after its last line end, so no identifier is split; past this much text
# without one (a JSON or XML file on one line), after its last separator.
MAX_CARRY = 1024 * 1024
SEPARATORS = (b" ", b"\t", b",", b";", b">", b'"')

HEADER_KEYWORDS = ("ИИН", "ЖСН", "IIN", "СНИЛС", "SNILS", "РНОКПП", "RNOKPP", "ИНН")
HEALTH_KEYWORDS = ("диагноз", "diagnosis", "МКБ", "флюорограф", "гинеколог", "ВИЧ", "HIV",
                   "психиатр", "ПЦР", "PCR", "COVID", "беременн", "рецепт", "анализ",
                   "пациент", "patient")
# Patronymics (Russian -ович/-овна, Kazakh -ұлы/-қызы): names of people nearby.
PATRONYMIC_ENDINGS = ("ович", "евич", "овна", "евна", "ұлы", "қызы")


# A Cyrillic letter in UTF-8 (Russian and Kazakh letters are two bytes, lead byte D0-D3).
_CYRILLIC_LETTER = rb"[\xd0-\xd3][\x80-\xbf]"
SHORT_WORD = 4


@dataclass(frozen=True)
class _Keyword:
    """A context keyword: byte spellings for a fast test, a pattern that confirms a word."""

    word: str
    needles: tuple[bytes, ...]
    # Words stand alone ("HIV" is not in "archive", "ВИЧ" not in "Петрович"); long Cyrillic
    # stems need only a word start ("флюорограф" finds "флюорография").
    confirm: re.Pattern[bytes]

    def found_in(self, text: bytes, ascii_lowered: bytes) -> bool:
        """Whether the keyword occurs in the text."""
        haystack = ascii_lowered if self.word.isascii() else text
        return any(needle in haystack for needle in self.needles) and \
            self.confirm.search(haystack) is not None


def _keyword(word: str) -> _Keyword:
    if word.isascii():
        needle = word.lower().encode("ascii")
        return _Keyword(word, (needle,), re.compile(rb"\b" + re.escape(needle) + rb"\b"))
    needles = tuple(sorted({form.encode("utf-8") for form in
                            (word, word.lower(), word.upper(), word.capitalize())}))
    ending = rb"(?!" + _CYRILLIC_LETTER + rb")" if len(word) <= SHORT_WORD else b""
    pattern = (rb"(?<!" + _CYRILLIC_LETTER + rb")(?:" + b"|".join(map(re.escape, needles))
               + rb")" + ending)
    return _Keyword(word, needles, re.compile(pattern))


CONTEXT_KEYWORDS: tuple[tuple[str, tuple[_Keyword, ...]], ...] = (
    ("header", tuple(_keyword(word) for word in HEADER_KEYWORDS)),
    ("health", tuple(_keyword(word) for word in HEALTH_KEYWORDS)),
)
# An ending must close a word of at least two more letters: "Петрович", not "ович" alone.
_PATRONYMIC = re.compile(b"(?:" + _CYRILLIC_LETTER + b"){2}(?:" + b"|".join(
    re.escape(ending.encode("utf-8")) for ending in PATRONYMIC_ENDINGS) + rb")(?!"
    + _CYRILLIC_LETTER + rb")")


# A 10-12 digit number turned into scientific notation by a spreadsheet: `6.12116E+10`.
_SCIENTIFIC = re.compile(rb"(?<![0-9.])[1-9][.,][0-9]{1,11}[Ee]\+1[01](?![0-9])")


@dataclass
class KindTally:
    """Distinct values of one kind, as keyed hashes in order of first appearance, and masked
    samples. A tally of a piece of a file also keeps each value's masked form, so that the
    pieces' tallies merge into the file's."""

    hashes: dict[bytes, str] = field(default_factory=dict)
    capped: bool = False
    samples: list[str] = field(default_factory=list)


class Tally:
    """Identifiers found in one file, never holding a plain value. Tallies that share a
    `key` (pieces of one file scanned apart, with `mergeable` set) can be merged."""

    def __init__(self, max_samples: int = MAX_SAMPLES, max_distinct: int = MAX_DISTINCT,
                 key: bytes | None = None, mergeable: bool = False) -> None:
        self.key = key or secrets.token_bytes(32)
        self._max_samples = max_samples
        self._max_distinct = max_distinct
        self._mergeable = mergeable
        self.kinds: dict[Kind, KindTally] = {}

    def add(self, kind: Kind, values: list[bytes]) -> None:
        """Count valid identifiers of one kind (repeats are counted once)."""
        tally = self.kinds.get(kind)
        if tally is None:
            tally = self.kinds[kind] = KindTally()
        if tally.capped:
            return
        hashes, samples, key = tally.hashes, tally.samples, self.key
        for value in dict.fromkeys(values):       # distinct, in order of appearance
            digest = hashlib.blake2b(value, key=key, digest_size=16).digest()
            if digest in hashes:
                continue
            sampled = len(samples) < self._max_samples
            masked = mask(kind, value.decode("ascii", errors="replace")) \
                if sampled or self._mergeable else ""
            if self._record(tally, digest, masked):
                return

    def _record(self, tally: KindTally, digest: bytes, masked: str) -> bool:
        """Count a new value; whether the kind is capped now."""
        tally.hashes[digest] = masked
        if len(tally.samples) < self._max_samples:
            tally.samples.append(masked)
        tally.capped = len(tally.hashes) >= self._max_distinct
        return tally.capped

    def merge(self, later: Tally) -> None:
        """Add what a mergeable tally (same key) of the text that follows found, as if one
        tally had seen both: the same counts, the same samples."""
        for kind, theirs in later.kinds.items():
            mine = self.kinds.setdefault(kind, KindTally())
            for digest, masked in theirs.hashes.items():
                if mine.capped:
                    break
                if digest not in mine.hashes and self._record(mine, digest, masked):
                    break

    def capped_kinds(self) -> frozenset[Kind]:
        """Kinds whose count is already a lower bound: more values of them change nothing."""
        return frozenset(kind for kind, tally in self.kinds.items() if tally.capped)

    def distinct(self) -> dict[Kind, int]:
        """Distinct values by kind (a lower bound where capped)."""
        return {kind: len(t.hashes) for kind, t in sorted(self.kinds.items())}


class TextScanner:
    """Feeds text to the detectors and keeps what they found in a `Tally`."""

    def __init__(self, detectors: tuple[Detector, ...] = DETECTORS,
                 tally: Tally | None = None, deadline: float | None = None) -> None:
        self.detectors = detectors
        self.deadline = deadline             # time.monotonic() value, None for no limit
        self.tally = tally or Tally()
        self.context: set[str] = set()
        self.suspected_unverifiable = 0
        self._context_budget = CONTEXT_WINDOW
        self._carry = b""
        self._by_length: dict[int, tuple[Detector, ...]] = {}
        for detector in detectors:
            for length in detector.digit_lengths:
                self._by_length[length] = self._by_length.get(length, ()) + (detector,)
        self._lengths = frozenset(self._by_length)
        self._twelve = self._by_length.get(12, ())

    def feed(self, chunk: bytes) -> None:
        """Scan the next piece of a stream; an identifier split across pieces is kept whole."""
        buffer = self._carry + chunk
        cut = _last_line_end(buffer)
        if cut < 0 and len(buffer) <= MAX_CARRY:
            self._carry = buffer
            return
        if cut < 0:
            cut = max(buffer.rfind(separator) for separator in SEPARATORS)
        cut = len(buffer) if cut < 0 else cut + 1
        self._carry = buffer[cut:]
        self.scan(buffer[:cut])

    def finish(self) -> None:
        """Scan what the stream left in the carry."""
        if self._carry:
            self.scan(self._carry)
            self._carry = b""

    def scan(self, text: bytes) -> None:
        """Scan one complete piece of text (a paragraph, a cell, a chunk cut at a line end)."""
        check_deadline(self.deadline)      # DeadlinePassed, as the document readers raise
        # A kind already capped needs no more values: a detector that can find nothing else
        # is not run (a 1 GB list of phone numbers stops costing after 100,000 of them).
        capped = self.tally.capped_kinds()
        found = valid_runs(text, self._by_length, capped)
        for detector in self.detectors:
            kinds = kinds_of(detector)
            if kinds and kinds <= capped:
                continue
            for kind, value in detector.spelled(text):
                found[kind].append(value)
        for kind, values in found.items():
            self.tally.add(kind, values)
        if exponent_marks(text):
            self.suspected_unverifiable += len(_SCIENTIFIC.findall(text))
        if self._context_budget > 0:
            window = text[:self._context_budget]
            self._context_budget -= len(window)
            self._find_context(window)

    def no_context(self) -> None:
        """Look for no context words: this scanner reads a later stretch of a file."""
        self._context_budget = 0

    def _find_context(self, text: bytes) -> None:
        lowered = text.lower()
        for label, keywords in CONTEXT_KEYWORDS:
            self.context.update(f"{label}:{keyword.word}" for keyword in keywords
                                if keyword.found_in(text, lowered))
        if _PATRONYMIC.search(text):
            self.context.add("names:patronymic")

    def scan_str(self, text: str) -> None:
        """Scan decoded text."""
        self.scan(text.encode("utf-8", errors="replace"))

    def scan_number(self, value: float) -> None:
        """A numeric spreadsheet cell. An IIN stored as a number lost its leading zeros
        (births 2000-2009 lose one, births in 2000 two or three), so shorter numbers are
        padded to 12 digits and checked as IINs first."""
        if isinstance(value, float):
            if not value.is_integer():
                return
            value = int(value)
        if not SHORTEST_NUMBER <= value < LONGEST_NUMBER:
            return
        digits = b"%d" % value
        candidates = [(b"%012d" % value, self._twelve)] if len(digits) < 12 else []
        candidates.append((digits, self._by_length.get(len(digits), ())))
        for candidate, detectors in candidates:
            for detector in detectors:
                kind = detector.classify(candidate)
                if kind is not None:
                    self.tally.add(kind, [candidate])
                    return


def _last_line_end(buffer: bytes) -> int:
    return max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
