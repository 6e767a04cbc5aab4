"""Finding identifiers in text: a streaming scanner over bytes and the tally it fills.

The scanner works on bytes, not str: one compiled search for runs of digits over large
chunks, with a detector validating only the candidates, is what keeps a 1 GB CSV fast. Values
found are deduplicated by a keyed hash whose key lives only in this process, so the only
plain values that leave this module are masked samples.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from audit.facts.documents import check_deadline
from audit.facts.pii.detectors import DETECTORS, Detector, Kind, mask

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
    """Distinct values of one kind (as keyed hashes) and masked samples."""

    hashes: set[bytes] = field(default_factory=set)
    capped: bool = False
    samples: list[str] = field(default_factory=list)


class Tally:
    """Identifiers found in one file, never holding a plain value."""

    def __init__(self, max_samples: int = MAX_SAMPLES, max_distinct: int = MAX_DISTINCT) -> None:
        self._key = secrets.token_bytes(32)
        self._max_samples = max_samples
        self._max_distinct = max_distinct
        self.kinds: dict[Kind, KindTally] = {}

    def add(self, kind: Kind, values: list[bytes]) -> None:
        """Count valid identifiers of one kind (repeats are counted once)."""
        tally = self.kinds.get(kind)
        if tally is None:
            tally = self.kinds[kind] = KindTally()
        for value in dict.fromkeys(values):       # distinct, in order of appearance
            if tally.capped:
                return
            digest = hashlib.blake2b(value, key=self._key, digest_size=16).digest()
            if digest in tally.hashes:
                continue
            tally.hashes.add(digest)
            if len(tally.samples) < self._max_samples:
                tally.samples.append(mask(kind, value.decode("ascii", errors="replace")))
            tally.capped = len(tally.hashes) >= self._max_distinct

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
        lengths = sorted(self._by_length) or [0]
        self._digit_runs = re.compile(
            # A match starts at a run's first digit, so no look-behind is needed; the leading
            # class on its own lets the search skip non-digits fast.
            rb"[0-9][0-9]{%d,}" % (lengths[0] - 1))
        self._twelve = self._by_length.get(12, ())
        self._classifiers = {length: _first_claim(detectors)
                             for length, detectors in self._by_length.items()}

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
        found: defaultdict[Kind, list[bytes]] = defaultdict(list)
        classifier_for = self._classifiers.get
        for run in self._digit_runs.findall(text):   # the hot loop: names bound locally
            classify = classifier_for(len(run))
            if classify is not None:
                kind = classify(run)
                if kind is not None:
                    found[kind].append(run)
        for detector in self.detectors:
            for kind, value in detector.spelled(text):
                found[kind].append(value)
        for kind, values in found.items():
            self.tally.add(kind, values)
        if b"E+1" in text or b"e+1" in text:
            self.suspected_unverifiable += len(_SCIENTIFIC.findall(text))
        if self._context_budget > 0:
            window = text[:self._context_budget]
            self._context_budget -= len(window)
            self._find_context(window)

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


def _first_claim(detectors: tuple[Detector, ...]) -> Callable[[bytes], Kind | None]:
    """One classifier per digit-run length: the first detector that claims a run wins."""
    if len(detectors) == 1:
        return detectors[0].classify

    def classify(run: bytes) -> Kind | None:
        for detector in detectors:
            kind = detector.classify(run)
            if kind is not None:
                return kind
        return None
    return classify


def _last_line_end(buffer: bytes) -> int:
    return max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
