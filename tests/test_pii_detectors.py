"""Identifier detectors and the streaming text scanner, on hand-made values."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import date, timedelta

import pytest

from audit.facts.pii.detectors import (
    DETECTORS,
    Detector,
    EmailAddresses,
    KazakhIdentifiers,
    Kind,
    Phones,
    RussianSnils,
    UkrainianRnokpp,
    mask,
)
from audit.facts.pii.text import TextScanner
from tests.test_pii_corpus import BIN, DECOYS, IINS, make_bin, make_iin

KZ = KazakhIdentifiers()


@pytest.mark.parametrize("value", ["061211600012", "791028302728", *IINS])
def test_published_and_generated_iins_are_valid(value: str) -> None:
    assert KZ.classify(value.encode()) is Kind.KZ_IIN


@pytest.mark.parametrize("value", ["000000000000", "061211600013", "791028302729", *DECOYS[:3],
                                   "791328302728", "790230302728"])
def test_checksum_or_date_failures_are_not_identifiers(value: str) -> None:
    assert KZ.classify(value.encode()) is None


def test_second_weight_set_is_used_when_the_first_gives_ten() -> None:
    # Find a number whose first checksum is 10, so only the second weights decide.
    for serial in range(10_000):
        first = f"8505153{serial:04d}"
        digits = [int(c) for c in first]
        if sum(d * w for d, w in zip(digits, range(1, 12))) % 11 != 10:
            continue
        second = sum(d * w for d, w in zip(digits, (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2))) % 11
        if second == 10:
            assert all(KZ.classify(f"{first}{k}".encode()) is None for k in range(10))
        else:
            assert KZ.classify(f"{first}{second}".encode()) is Kind.KZ_IIN
            return
    pytest.fail("no number needing the second weights found")


def test_a_bin_is_told_apart_and_is_not_personal() -> None:
    assert KZ.classify(BIN.encode()) is Kind.KZ_BIN
    assert KZ.classify(make_bin("9911", 777).encode()) is Kind.KZ_BIN


def test_century_digit_outside_one_to_six_is_low_confidence() -> None:
    first = "7910280"     # a real date, century digit 0
    for serial in range(100):
        digits = [int(c) for c in f"{first}{serial:04d}"]
        control = sum(d * w for d, w in zip(digits, range(1, 12))) % 11
        if control != 10:
            value = f"{first}{serial:04d}{control}"
            assert KZ.classify(value.encode()) is Kind.KZ_IIN_LOW_CONFIDENCE
            return


def test_leap_day_needs_a_leap_year() -> None:
    assert KZ.classify(make_iin(date(2000, 2, 29), 5).encode()) is Kind.KZ_IIN
    fake = make_iin(date(2000, 2, 28), 3)       # 1900-02-28 exists; 1900-02-29 does not
    as_leap_day = fake[:4] + "29" + fake[6:11]
    digits = [int(c) for c in as_leap_day]
    control = sum(d * w for d, w in zip(digits, range(1, 12))) % 11
    if control != 10:
        assert KZ.classify(f"{as_leap_day}{control}".encode()) is None


def test_random_twelve_digit_numbers_rarely_pass() -> None:
    rng = random.Random(6)
    hits = sum(KZ.classify(b"%012d" % rng.randrange(10 ** 12)) is Kind.KZ_IIN
               for _ in range(20_000))
    assert hits < 20_000 * 0.005          # LEGAL.md measured about 0.2 %


def test_snils_rnokpp_phones_and_email() -> None:
    assert RussianSnils().classify(b"11223344595") is Kind.RU_SNILS
    assert RussianSnils().classify(b"11223344596") is None
    assert RussianSnils().classify(b"00100199800") is None          # before checksums
    assert RussianSnils().spelled(b"SNILS 112-233-445 95; 112-233-445 96") == \
        [(Kind.RU_SNILS, b"11223344595")]
    assert RussianSnils().spelled(b"9112-233-445 95") == []
    assert UkrainianRnokpp(date(2026, 1, 1)).classify(b"1759013776") is Kind.UA_RNOKPP
    assert UkrainianRnokpp(date(2026, 1, 1)).classify(b"1759013777") is None
    assert UkrainianRnokpp(date(2026, 1, 1)).classify(b"9959013776") is None  # born in 2172
    phones = Phones()
    assert phones.spelled(b"+7 (701) 123-45-67, 8 777 123 45 67, +7 495 1234567") == \
        [(Kind.PHONE, b"77011234567"), (Kind.PHONE, b"77771234567")]
    assert phones.classify(b"87011234567") is Kind.PHONE
    assert phones.classify(b"84951234567") is None
    assert EmailAddresses().spelled(b"to: Ivan.P+x@Clinic.KZ; bad@host") == \
        [(Kind.EMAIL, b"ivan.p+x@clinic.kz")]


def test_masking_never_shows_a_birth_date() -> None:
    assert mask(Kind.KZ_IIN, "061211600012") == "**********12"
    assert mask(Kind.RU_SNILS, "11223344595") == "*********95"
    assert mask(Kind.EMAIL, "ivan@clinic.kz") == "i***@clinic.kz"


def test_every_detector_is_registered_once() -> None:
    names = [detector.name for detector in DETECTORS]
    assert len(names) == len(set(names)) == 5


def test_adding_a_country_is_adding_a_detector() -> None:
    class Digits13:
        name = "test13"
        digit_lengths = frozenset({13})

        def spelled(self, text: bytes) -> list[tuple[Kind, bytes]]:
            return []

        def classify(self, candidate: bytes) -> Kind | None:
            return Kind.EMAIL if candidate.endswith(b"7") else None

    detectors: tuple[Detector, ...] = (*DETECTORS, Digits13())
    scanner = TextScanner(detectors)
    scanner.scan(b"1234567890127 1234567890128 " + IINS[0].encode())
    assert scanner.tally.distinct() == {Kind.KZ_IIN: 1, Kind.EMAIL: 1}


def test_identifiers_split_across_chunks_are_found_once() -> None:
    text = "".join(f"{IINS[n % 3]};{DECOYS[n % 3]}\n" for n in range(3000)).encode()
    for size in (7, 64, 4097):
        scanner = TextScanner()
        for start in range(0, len(text), size):
            scanner.feed(text[start:start + size])
        scanner.finish()
        assert scanner.tally.distinct() == {Kind.KZ_IIN: 3}


def test_a_file_without_line_ends_is_cut_at_separators() -> None:
    values = [make_iin(date(1950, 1, 1) + timedelta(days=n), 3) for n in range(18_000)]
    text = " ".join(f"{value} {'x' * 60}" for value in values).encode()
    # The first piece is longer than any carry and ends in the middle of an IIN.
    middle = text.index(values[-2].encode()) + 6
    assert middle > 1024 * 1024
    scanner = TextScanner()
    scanner.feed(text[:middle])
    scanner.feed(text[middle:])
    scanner.finish()
    assert scanner.tally.distinct() == {Kind.KZ_IIN: 18_000}


def test_longer_digit_runs_do_not_hide_identifiers_or_make_them() -> None:
    scanner = TextScanner()
    scanner.scan(f"card 4{IINS[0]}9 account {IINS[1]}0 id {IINS[2]}".encode())
    assert scanner.tally.distinct() == {Kind.KZ_IIN: 1}


def test_context_words_need_to_stand_alone() -> None:
    scanner = TextScanner()
    scanner.scan("Петрович archive; HIVE; флюорография; ВИЧ-инфекция; ЖСН\n".encode())
    assert scanner.context == {"health:флюорограф", "health:ВИЧ", "header:ЖСН",
                               "names:patronymic"}
    kazakh = TextScanner()
    kazakh.scan("Нурланов Ерлан Нурланұлы\n".encode())
    assert kazakh.context == {"names:patronymic"}
    none = TextScanner()
    none.scan("ович; ұлы\n".encode())
    assert none.context == set()


def test_the_distinct_count_is_capped_and_says_so() -> None:
    from audit.facts.pii.text import Tally
    scanner = TextScanner(tally=Tally(max_distinct=2))
    scanner.scan(" ".join(IINS).encode())
    assert scanner.tally.distinct() == {Kind.KZ_IIN: 2}
    assert scanner.tally.kinds[Kind.KZ_IIN].capped


def test_numeric_cells_lose_leading_zeros_and_are_padded_back() -> None:
    born_2000 = make_iin(date(2000, 1, 15), 5)          # "000115...": three zeros lost
    born_2006 = make_iin(date(2006, 12, 11), 6)         # one zero lost
    scanner = TextScanner()
    scanner.scan_numbers([int(born_2000), float(born_2006), 1759013776, 12.5, 10 ** 14,
                          float("nan"), float("inf")])
    assert scanner.tally.distinct() == {Kind.KZ_IIN: 2, Kind.UA_RNOKPP: 1}
    assert sorted(scanner.tally.kinds[Kind.KZ_IIN].samples) == \
        sorted("**********" + value[-2:] for value in (born_2000, born_2006))



def test_matrix_validation_agrees_with_one_by_one() -> None:
    """`classify_rows` (numpy, the scanner's fast path) against `classify` on random numbers,
    valid IINs and BINs, dates at month ends and 29 February, every century digit."""
    import numpy as np

    from audit.facts.pii.detectors import RowClassifier
    from audit.facts.pii.digits import ZERO
    rng = random.Random(11)
    by_length: dict[int, list[bytes]] = {10: [], 11: [], 12: []}
    for length in by_length:
        by_length[length] += [b"%0*d" % (length, rng.randrange(10 ** length))
                              for _ in range(20_000)]
    for n in range(3000):
        born = date(1890, 1, 1) + timedelta(days=rng.randrange(45_000))
        by_length[12].append(make_iin(born, n % 10, rng.randrange(9000)).encode())
        by_length[12].append(make_bin(f"{n % 100:02d}{n % 14:02d}", n).encode())
    by_length[12] += [f"{y:02d}0229{c}0001{k}".encode() for y in range(0, 100, 3)
                      for c in range(10) for k in range(10)]
    by_length[11] += [b"7%d%09d" % (code, n) for code in range(10) for n in range(50)]
    for detector in DETECTORS:
        assert isinstance(detector, RowClassifier) or not detector.digit_lengths
        for length in detector.digit_lengths:
            candidates = by_length[length]
            rows = np.frombuffer(b"".join(candidates), dtype=np.uint8).reshape(-1, length) - ZERO
            masks = detector.classify_rows(rows)   # type: ignore[attr-defined]
            by_rows = [next((kind for kind, mask in masks.items() if mask[n]), None)
                       for n in range(len(candidates))]
            assert by_rows == [detector.classify(c) for c in candidates], detector.name


TALLY_KEYS = """
from audit.facts.pii.detectors import Kind
from audit.facts.pii.text import PER_PROCESS_HASH, Tally
values = [b"%012d" % n for n in range(1000)]
tally = Tally()
tally.add(Kind.KZ_IIN, values)
keys = list(tally.kinds[Kind.KZ_IIN].hashes)
assert len(keys) == 1000 and not set(keys) & (set(values) | {int(v) for v in values})
print(PER_PROCESS_HASH, type(keys[0]).__name__)
"""


@pytest.mark.parametrize(("seed", "expected"), [("random", "True int"), ("0", "False bytes")])
def test_a_tally_keeps_keyed_hashes_whatever_the_hash_seed(seed: str, expected: str) -> None:
    """Python's own hash is keyed by the interpreter's secret; with PYTHONHASHSEED fixed that
    secret is known, and the tally hashes with BLAKE2b under a key of its own instead."""
    done = subprocess.run([sys.executable, "-c", TALLY_KEYS], capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}, check=True, timeout=60)
    assert done.stdout.split() == expected.split()
