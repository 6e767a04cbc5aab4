"""Identifier detectors: each is a small unit that recognises one family of identifiers.

A detector looks at bare digit runs of the lengths it declares (one shared pass over the text
finds every run of 10 to 12 digits) and, when its identifiers are also written with
separators (`112-233-445 95`, `+7 701 123 45 67`), finds those spellings itself. It then
classifies each candidate: a person's identifier, an organisation's (not personal data), or
nothing. Adding a country is adding one detector to `DETECTORS`.

Validation works on digits already translated to their values (`b"\\x00\\x06\\x01..."`), which
keeps the hot loop free of per-character conversions.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from itertools import repeat
from operator import mul
from typing import Protocol, runtime_checkable

import numpy as np

from audit.facts.pii.digits import (
    SMALL_TEXT,
    DigitRows,
    Mask,
    as_array,
    followed_by,
    number,
    real_dates,
    weighted,
)


class Kind(StrEnum):
    """What a valid identifier is."""

    KZ_IIN = "kz_iin"
    # Checksum and birth date valid, but the century/sex digit is outside 1-6: reported at low
    # confidence rather than dropped (LEGAL.md section 4).
    KZ_IIN_LOW_CONFIDENCE = "kz_iin_low_confidence"
    KZ_BIN = "kz_bin"
    RU_SNILS = "ru_snils"
    UA_RNOKPP = "ua_rnokpp"
    PHONE = "phone"
    EMAIL = "email"


# Kinds that identify a person by a national number; phones and e-mail addresses are weaker.
NATIONAL_IDS: frozenset[Kind] = frozenset({Kind.KZ_IIN, Kind.RU_SNILS, Kind.UA_RNOKPP})
# Kinds that are not personal data at all (a legal entity's number).
NOT_PERSONAL: frozenset[Kind] = frozenset({Kind.KZ_BIN})

# Byte value of each ASCII digit becomes the digit's value; other bytes stay as they are.
DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))


class Detector(Protocol):
    """One family of identifiers."""

    name: str
    # Lengths of bare digit runs this detector classifies.
    digit_lengths: frozenset[int]
    # A detector may also say which kinds it finds (`kinds`): once all of them are capped in
    # a file, it is not run on the rest of it. One that does not say is always run.

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """Identifiers written with separators: validated, normalised to digits (or, for an
        e-mail address, lower case)."""
        ...

    def classify(self, candidate: bytes) -> Kind | None:
        """The kind of a valid identifier, None when the candidate is not one."""
        ...


def kinds_of(detector: Detector) -> frozenset[Kind]:
    """The kinds a detector says it finds; empty when it does not say."""
    kinds: frozenset[Kind] = getattr(detector, "kinds", frozenset())
    return kinds


@runtime_checkable
class RowClassifier(Protocol):
    """A detector that also validates many candidates at once, as `classify` does one: the
    scanner's fast path (a detector without it is asked candidate by candidate)."""

    def classify_rows(self, rows: DigitRows) -> dict[Kind, Mask]:
        """For each kind, which rows (digit values, one candidate a row) are identifiers of
        that kind; the masks are disjoint."""
        ...


def mask(kind: Kind, value: str) -> str:
    """A value shown only as far as proving a leak needs: never a birth date, never a name."""
    if kind is Kind.EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind is Kind.KZ_BIN:          # a company's number is public; masked all the same
        return "*" * (len(value) - 4) + value[-4:]
    return "*" * (len(value) - 2) + value[-2:]


DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _real_date(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and day == 29:
        return calendar.isleap(year)
    return day <= DAYS_IN_MONTH[month]


IIN_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
IIN_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
CENTURY_BY_DIGIT = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
BIN_TYPES = frozenset({4, 5, 6})       # resident, non-resident, joint individual enterprise
BIN_DIVISIONS = frozenset({0, 1, 2, 3})  # head office, branch, representative office, farm
# The same tables indexed by a digit, for `classify_rows`.
CENTURIES = np.array([CENTURY_BY_DIGIT.get(digit, 0) for digit in range(10)], dtype=np.int64)
BIN_TYPE_DIGITS = np.array([digit in BIN_TYPES for digit in range(10)])
BIN_DIVISION_DIGITS = np.array([digit in BIN_DIVISIONS for digit in range(10)])


class KazakhIdentifiers:
    """Kazakhstan IIN (a person: birth date, century/sex digit) and BIN (a legal entity)."""

    name = "kz"
    digit_lengths = frozenset({12})
    kinds = frozenset({Kind.KZ_IIN, Kind.KZ_IIN_LOW_CONFIDENCE, Kind.KZ_BIN})

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """IINs and BINs are written as plain digit runs only."""
        return []

    def classify(self, candidate: bytes) -> Kind | None:
        """IIN, low-confidence IIN, BIN, or nothing. The control digit: weights 1..11, then
        the second set when the first gives 10; 10 again means never issued."""
        d = candidate.translate(DIGIT_VALUES)
        control: int = sum(map(mul, d, IIN_WEIGHTS)) % 11
        if control == 10:
            control = sum(map(mul, d, IIN_SECOND_WEIGHTS)) % 11
        if control != d[11]:        # a digit is never 10: an unissued number fails here
            return None
        return self._kind_of_valid(d)

    def classify_rows(self, rows: DigitRows) -> dict[Kind, Mask]:
        """`classify`, for a matrix of 12-digit candidates."""
        control = weighted(rows, IIN_WEIGHTS) % 11
        second = weighted(rows, IIN_SECOND_WEIGHTS) % 11
        control = np.where(control == 10, second, control)
        valid = control == rows[:, 11]
        year, month, day = number(rows, 0, 2), number(rows, 2, 2), number(rows, 4, 2)
        century = CENTURIES[rows[:, 6]]
        known = century > 0
        iin = valid & known & real_dates(century + year, month, day)
        low = valid & ~known & real_dates(1900 + year, month, day) & ~((month == 2) & (day == 29))
        bin_ = valid & ~iin & ~low & (month >= 1) & (month <= 12) & BIN_TYPE_DIGITS[rows[:, 4]] \
            & BIN_DIVISION_DIGITS[rows[:, 5]]
        return {Kind.KZ_IIN: iin, Kind.KZ_IIN_LOW_CONFIDENCE: low, Kind.KZ_BIN: bin_}

    @staticmethod
    def _kind_of_valid(d: bytes) -> Kind | None:
        year, month, day = d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5]
        century = CENTURY_BY_DIGIT.get(d[6])
        if century is not None and _real_date(century + year, month, day):
            return Kind.KZ_IIN
        if century is None and _real_date(1900 + year, month, day) \
                and not (month == 2 and day == 29):
            # Without a valid century the year is unknown: 29 February cannot be confirmed.
            return Kind.KZ_IIN_LOW_CONFIDENCE
        if 1 <= month <= 12 and d[4] in BIN_TYPES and d[5] in BIN_DIVISIONS:
            return Kind.KZ_BIN
        return None


SNILS_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, 1)
SNILS_FIRST_CHECKED = 1001998      # numbers up to 001-001-998 were issued without a checksum


class RussianSnils:
    """Russian SNILS: 11 digits, `XXX-XXX-XXX YY`."""

    name = "ru_snils"
    digit_lengths = frozenset({11})
    kinds = frozenset({Kind.RU_SNILS})
    # Anchored on the first dash so the search skips ahead quickly; the leading digits are
    # checked by hand.
    _spelled = re.compile(rb"-([0-9]{3})-([0-9]{3})[ -]([0-9]{2})(?![0-9])")

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """`XXX-XXX-XXX YY` and `XXX-XXX-XXX-YY`."""
        found = []
        for match in self._spelled.finditer(text):
            start = match.start()
            head = text[start - 3:start]
            if start >= 3 and head.isdigit() and not text[start - 4:start - 3].isdigit():
                candidate = head + match.group(1) + match.group(2) + match.group(3)
                if self.classify(candidate) is not None:
                    found.append((Kind.RU_SNILS, candidate))
        return found

    def classify(self, candidate: bytes) -> Kind | None:
        """SNILS when the control number matches."""
        if int(candidate[:9]) <= SNILS_FIRST_CHECKED:
            return None
        d = candidate.translate(DIGIT_VALUES)
        total = sum(map(mul, d, SNILS_WEIGHTS))
        if total >= 100:
            total = total % 101 % 100   # 100 and 101 give 00
        return Kind.RU_SNILS if total == d[9] * 10 + d[10] else None

    def classify_rows(self, rows: DigitRows) -> dict[Kind, Mask]:
        """`classify`, for a matrix of 11-digit candidates."""
        total = weighted(rows, SNILS_WEIGHTS)
        total = np.where(total >= 100, total % 101 % 100, total)
        valid = (number(rows, 0, 9) > SNILS_FIRST_CHECKED) & (total == number(rows, 9, 2))
        return {Kind.RU_SNILS: valid}


RNOKPP_WEIGHTS = (-1, 5, 7, 9, 4, 6, 10, 5, 7)
RNOKPP_EPOCH = date(1899, 12, 31)      # the first five digits count days from here


class UkrainianRnokpp:
    """Ukrainian RNOKPP (individual tax number): 10 digits, the first five a birth date."""

    name = "ua_rnokpp"
    digit_lengths = frozenset({10})
    kinds = frozenset({Kind.UA_RNOKPP})

    def __init__(self, today: date | None = None) -> None:
        self._latest_birth = ((today or date.today()) - RNOKPP_EPOCH).days

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """RNOKPPs are written as plain digit runs only."""
        return []

    def classify(self, candidate: bytes) -> Kind | None:
        """RNOKPP when the control digit matches and the birth date is not in the future."""
        d = candidate.translate(DIGIT_VALUES)
        days = int(candidate[:5])
        if not 1 <= days <= self._latest_birth:
            return None
        control = sum(map(mul, d, RNOKPP_WEIGHTS)) % 11 % 10
        return Kind.UA_RNOKPP if control == d[9] else None

    def classify_rows(self, rows: DigitRows) -> dict[Kind, Mask]:
        """`classify`, for a matrix of 10-digit candidates."""
        days = number(rows, 0, 5)
        control = weighted(rows, RNOKPP_WEIGHTS) % 11 % 10
        valid = (days >= 1) & (days <= self._latest_birth) & (control == rows[:, 9])
        return {Kind.UA_RNOKPP: valid}


# +7 6xx/7xx are Kazakh numbers, +7 9xx Russian mobiles (LEGAL.md section 4); both count.
PHONE_OPERATOR_CODES = frozenset({6, 7, 9})
OPERATOR_DIGITS = np.array([digit in PHONE_OPERATOR_CODES for digit in range(10)])


class Phones:
    """Kazakh and Russian phone numbers (+7, or the domestic 8 prefix): a weak signal."""

    name = "phone"
    digit_lengths = frozenset({11})
    kinds = frozenset({Kind.PHONE})
    _international = re.compile(
        rb"\+7[\s(-]*([679][0-9]{2}[\s)-]*[0-9]{3}[\s-]*[0-9]{2}[\s-]*[0-9]{2})(?![0-9])")
    _domestic = re.compile(
        rb"8[\s(-]+([679][0-9]{2}[\s)-]*[0-9]{3}[\s-]*[0-9]{2}[\s-]*[0-9]{2})(?![0-9])")
    _separators = b" \t\n\r\x0b\x0c()-"
    _first_separators = b" \t\n\r\x0b\x0c(-"        # what `[\s(-]` admits

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """`+7 701 123 45 67`, `8 (701) 123-45-67` and the like, as `7XXXXXXXXXX` (the
        patterns admit only operator codes 6xx, 7xx and 9xx)."""
        numbers = self._international.findall(text)
        numbers += [match.group(1) for match in self._domestic_matches(text)
                    if not text[match.start() - 1:match.start()].isdigit()]
        if not numbers:
            return []
        # Separators removed from all numbers at once: "," is none of them and no digit.
        digits = (b"7" + b",7".join(numbers)).translate(None, self._separators).split(b",")
        return list(zip(repeat(Kind.PHONE), digits))

    def _domestic_matches(self, text: bytes) -> Iterator[re.Match[bytes]]:
        """What `finditer` of the domestic pattern gives, tried in a long text only where an
        8 is followed by a separator."""
        if len(text) < SMALL_TEXT:
            yield from self._domestic.finditer(text)
            return
        end = 0
        for start in followed_by(as_array(text), ord("8"), self._first_separators).tolist():
            if start >= end and (match := self._domestic.match(text, start)):
                end = match.end()
                yield match

    def classify(self, candidate: bytes) -> Kind | None:
        """A phone number: 11 digits, country prefix 7 or 8, operator code 6xx/7xx/9xx."""
        if candidate[0] in b"78" and candidate[1] - 48 in PHONE_OPERATOR_CODES:
            return Kind.PHONE
        return None

    def classify_rows(self, rows: DigitRows) -> dict[Kind, Mask]:
        """`classify`, for a matrix of 11-digit candidates."""
        prefix = (rows[:, 0] == 7) | (rows[:, 0] == 8)
        return {Kind.PHONE: prefix & OPERATOR_DIGITS[rows[:, 1]]}


class EmailAddresses:
    """E-mail addresses: a weak signal."""

    name = "email"
    digit_lengths: frozenset[int] = frozenset()
    kinds = frozenset({Kind.EMAIL})
    # Anchored on "@", which a search finds fast; the local part is read backwards by hand.
    _domain = re.compile(rb"@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24})\b")
    _local_part = re.compile(rb"[A-Za-z0-9._%+-]{1,64}\Z")

    def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
        """`local@domain.tld`, lower-cased."""
        found = []
        for match in self._domain.finditer(text):
            start = match.start()
            local = self._local_part.search(text, max(0, start - 64), start)
            if local:
                found.append((Kind.EMAIL, (local.group() + b"@" + match.group(1)).lower()))
        return found

    def classify(self, candidate: bytes) -> Kind | None:
        """Every well-formed address found counts."""
        return Kind.EMAIL


def default_detectors(today: date | None = None) -> tuple[Detector, ...]:
    """The detectors a scan uses unless told otherwise."""
    return (KazakhIdentifiers(), RussianSnils(), UkrainianRnokpp(today), Phones(),
            EmailAddresses())


DETECTORS: tuple[Detector, ...] = default_detectors()
