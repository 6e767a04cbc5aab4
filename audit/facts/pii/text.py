"""Finding identifiers in text: a streaming scanner over bytes and the tally it fills.

The scanner works on bytes, not str: the digit runs of a chunk are found and validated a
matrix at a time (`audit.facts.pii.candidates`), so no Python code runs per byte and little
per candidate, which is what keeps a 1 GB CSV fast. Values found are deduplicated by a keyed
hash whose key lives only in this process (or, for the pieces of one file scanned in several
processes, only in those), so the only plain values that leave this module are masked
samples.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import blake2b

from audit.facts.documents import check_deadline
from audit.facts.pii.candidates import valid_runs
from audit.facts.pii.detectors import DETECTORS, Detector, Kind, kinds_of, mask
from audit.facts.pii.digits import SMALL_TEXT, exponent_marks

MAX_SAMPLES = 3
# Distinct values remembered per kind and file; past it the count is a lower bound, which is
# proof enough of a leak and keeps memory flat whatever the file holds.
MAX_DISTINCT = 100_000
# Numeric cells worth a look: 9 to 12 digits (an IIN of someone born in January 2000,
# `000115...`, keeps only nine).
SHORTEST_NUMBER, LONGEST_NUMBER = 10 ** 8, 10 ** 12
SHORTEST_TWELVE = 10 ** 11
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


# Python's hash of bytes is SipHash keyed by a secret drawn when the interpreter starts: a keyed
# hash at a seventh of BLAKE2b's cost per value, with no call per value. It is used unless
# PYTHONHASHSEED fixes that secret. (64 bits: two of 100,000 values share a hash about once
# in three billion files, which undercounts by one.)
PER_PROCESS_HASH = os.environ.get("PYTHONHASHSEED", "random") == "random"
Digest = bytes | int


@dataclass
class KindTally:
    """Distinct values of one kind, as keyed hashes in order of first appearance, and the
    first values masked: the samples."""

    hashes: dict[Digest, str] = field(default_factory=dict)   # masked for the samples
    capped: bool = False
    samples: list[str] = field(default_factory=list)


class Tally:
    """Identifiers found in one file, never holding a plain value. Tallies that share a
    `key` (pieces of one file scanned apart, in several processes) hash with BLAKE2b under
    it and can be merged; a tally without one uses Python's own keyed hash (`hash`)."""

    def __init__(self, max_samples: int = MAX_SAMPLES, max_distinct: int = MAX_DISTINCT,
                 key: bytes | None = None) -> None:
        if key is None and not PER_PROCESS_HASH:
            key = secrets.token_bytes(32)
        self._secret = key                      # None: Python's own hash
        self._hasher = blake2b(key=self._secret, digest_size=16) if self._secret else None
        self._max_samples = max_samples
        self._max_distinct = max_distinct
        self.kinds: dict[Kind, KindTally] = {}

    def __getstate__(self) -> dict[str, object]:
        """A piece's tally travels back from its worker; the hasher is made again there."""
        state = self.__dict__.copy()
        del state["_hasher"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._hasher = blake2b(key=self._secret, digest_size=16) if self._secret else None

    def add(self, kind: Kind, values: list[bytes]) -> None:
        """Count valid identifiers of one kind (repeats are counted once). A chunk's values
        are hashed and sifted by comprehensions: a loop body per value cost a microsecond,
        most of the scan of a list that holds little but identifiers."""
        tally = self.kinds.get(kind)
        if tally is None:
            tally = self.kinds[kind] = KindTally()
        if tally.capped:
            return
        hashes = tally.hashes
        distinct = list(dict.fromkeys(values))          # in order of first appearance
        digests = self._digests(distinct)
        room = self._max_distinct - len(hashes)
        if len(tally.samples) == self._max_samples:
            # Nothing needs their order any more: the new values are sifted by one set
            # difference (past the cap, any of them counts as well as another).
            new = list(set(digests).difference(hashes))[:room]
            hashes.update(dict.fromkeys(new, ""))
        else:
            fresh = [index for index, digest in enumerate(digests)
                     if digest not in hashes][:room]
            sampled = fresh[:self._max_samples - len(tally.samples)]
            masked = [_masked(kind, distinct[index]) for index in sampled]
            hashes.update(zip([digests[index] for index in sampled], masked))
            hashes.update(dict.fromkeys([digests[index] for index in fresh[len(sampled):]], ""))
            tally.samples += masked
        tally.capped = len(hashes) >= self._max_distinct

    def _digests(self, values: list[bytes]) -> list[Digest]:
        if self._hasher is None:
            return list(map(hash, values))
        # A copy of the keyed hasher skips hashing the key again; `update` returns None, so
        # `or` goes on to the digest without a function call per value.
        copy = self._hasher.copy
        return [(hasher := copy()).update(value)              # type: ignore[func-returns-value]
                or hasher.digest() for value in values]

    def merge(self, later: Tally) -> None:
        """Add what a tally (same key) of the text that follows found, as if one tally had
        seen both: the same counts, the same samples. Only the first values of `later` can
        become samples, and those it kept masked: before a value of `later` is reached while
        samples are still missing, every value ahead of it was counted here already, so it
        is among the first `max_samples` of `later`."""
        for kind, theirs in later.kinds.items():
            mine = self.kinds.setdefault(kind, KindTally())
            for digest, masked in theirs.hashes.items():
                if mine.capped:
                    break
                if digest not in mine.hashes:
                    mine.hashes[digest] = masked
                    if len(mine.samples) < self._max_samples:
                        mine.samples.append(masked)
                    mine.capped = len(mine.hashes) >= self._max_distinct

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
        self._shorter = {length: found_by for length, found_by in self._by_length.items()
                         if length < 12}

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

    @property
    def context_left(self) -> int:
        """How many more bytes of the text it is given the scanner looks for context in."""
        return self._context_budget

    def restart_context(self, window: int) -> None:
        """Look for context words in the next `window` bytes again: the top of the next part
        of a package."""
        self._context_budget = window

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

    def scan_numbers(self, values: Iterable[float]) -> None:
        """Numeric cells of a spreadsheet or JSON document. An IIN stored as a number lost
        its leading zeros (births 2000-2009 lose one, births in 2000 two or three), so each
        whole number of 9 to 12 digits is read padded to 12 digits first; those that are no
        12-digit identifier then as they are. Both readings are validated a matrix at a
        time, like text: a sheet holds hundreds of thousands of such cells."""
        numbers = [int(value) for value in values
                   if SHORTEST_NUMBER <= value < LONGEST_NUMBER and value == int(value)]
        if not numbers:
            return
        padded = [b"%012d" % number for number in numbers]
        found = valid_runs(b"\n".join(padded), {12: self._twelve},
                           small_text=_dense_text(len(padded)))
        claimed = {value for values in found.values() for value in values}
        rest = [b"%d" % number for number, twelve in zip(numbers, padded, strict=True)
                if number < SHORTEST_TWELVE and twelve not in claimed]
        if rest:
            found.update(valid_runs(b"\n".join(rest), self._shorter,
                                    small_text=_dense_text(len(rest))))
        for kind, kind_values in found.items():
            self.tally.add(kind, kind_values)


# Numbers one per line are all candidates: past this many, validating them a matrix at a time
# beats one by one, whatever the text's length.
DENSE_CANDIDATES = 32


def _dense_text(candidates: int) -> int:
    """The `small_text` of `valid_runs` for a list of candidate numbers."""
    return 0 if candidates >= DENSE_CANDIDATES else SMALL_TEXT


def _masked(kind: Kind, value: bytes) -> str:
    return mask(kind, value.decode("ascii", errors="replace"))


def _last_line_end(buffer: bytes) -> int:
    return max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
