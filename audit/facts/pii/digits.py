"""Digit runs found and validated many at a time: the scanner's hot loop, in numpy.

One pass over a chunk's bytes marks the digits, the edges of every maximal run of digits
give their starts and lengths, and the runs of the lengths a detector claims are gathered into
a matrix of digit values, one row per candidate, that the detector validates in one go. No
Python code runs per byte, and per candidate only for the few that prove valid. numpy is a
dependency for this reason: a checksum per candidate in Python costs about 1 us, which alone
held a CSV scan under 40 MB/s.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DigitRows = NDArray[np.uint8]       # (candidates, length): digit values 0-9
Mask = NDArray[np.bool_]
Starts = NDArray[np.intp]
ZERO = 48                            # ord("0")


def as_array(text: bytes) -> NDArray[np.uint8]:
    """The bytes of a chunk as an array, without a copy."""
    return np.frombuffer(text, dtype=np.uint8)


# Below this size (a small file, a short cell) numpy's cost per call outweighs its speed per
# byte: runs are found by a regex and validated one by one.
SMALL_TEXT = 16 * 1024
# Digits are looked for in blocks of this size: the temporary arrays stay in the CPU's cache
# (and below the size at which each allocation is a fresh, page-faulting mapping).
BLOCK_BYTES = 128 * 1024


def digit_runs(data: NDArray[np.uint8], lengths: frozenset[int]) -> dict[int, Starts]:
    """Start offsets of the maximal runs of ASCII digits whose length is one of `lengths`
    (a run of 13 digits is no 12-digit candidate), in the order they occur."""
    if not lengths:
        return {}
    found = [_block_runs(data, start, lengths) for start in range(0, len(data), BLOCK_BYTES)]
    return {length: np.concatenate([block[length] for block in found]) if found
            else np.zeros(0, dtype=np.intp) for length in sorted(lengths)}


def _block_runs(data: NDArray[np.uint8], start: int, lengths: frozenset[int]
                ) -> dict[int, Starts]:
    """`digit_runs` for the runs that start in one block. Short runs (dates, amounts) are
    far more common than long ones, so the long runs are found without listing the short: a
    run starts where the shortest length's worth of digits begins and no digit precedes."""
    shortest, longest = min(lengths), max(lengths)
    # The byte before the block tells whether a run starts at its first byte; the bytes
    # after it, how long a run near its end is.
    before = 1 if start else 0
    window = data[start - before:start + BLOCK_BYTES + longest + 1]
    size = len(window)
    # Padded with non-digits, so that a run's end can be read past the data's end.
    is_digit = np.zeros(size + longest + 1, dtype=np.bool_)
    # Bytes below "0" wrap around to large values, so one comparison tells a digit.
    np.less(window - np.uint8(ZERO), 10, out=is_digit[:size])
    owned = min(BLOCK_BYTES, len(data) - start)
    if owned < shortest or size < shortest:
        return {length: np.zeros(0, dtype=np.intp) for length in lengths}
    begins = _all_digits(is_digit[:before + owned + shortest - 1], shortest)
    begins[1:] &= ~is_digit[:len(begins) - 1]
    if before:
        begins[0] = False
    starts = np.flatnonzero(begins)
    run_lengths = np.full(len(starts), shortest, dtype=np.intp)
    going = np.ones(len(starts), dtype=np.bool_)
    for offset in range(shortest, longest + 1):       # runs longer than `longest` end above
        going &= is_digit[starts + offset]
        run_lengths += going
    starts += start - before
    return {length: starts[run_lengths == length] for length in lengths}


def followed_by(data: NDArray[np.uint8], first: int, followers: bytes) -> Starts:
    """Offsets of the byte `first` where one of `followers` comes next: where a pattern that
    begins so may match. A regex looks at every `first` in turn, which costs far more in text
    where that byte is common (digits in XML's character references)."""
    found = []
    for start in range(0, len(data), BLOCK_BYTES):
        block = data[start:start + BLOCK_BYTES + 1]
        heads = block[:-1] == first
        after = block[1:]
        follows = after == followers[0]
        for follower in followers[1:]:
            follows |= after == follower
        found.append(np.flatnonzero(heads & follows) + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)


def _all_digits(is_digit: Mask, width: int) -> Mask:
    """For each position from which `width` bytes fit, whether they are all digits: windows
    of doubling widths, combined along the binary digits of `width`."""
    span = len(is_digit) - width + 1
    windows = {1: is_digit}
    while 2 * max(windows) <= width:
        half = max(windows)
        windows[2 * half] = windows[half][:-half] & windows[half][half:]
    combined: Mask | None = None
    offset = 0
    for part in sorted(windows, reverse=True):
        if width - offset >= part:
            piece = windows[part][offset:offset + span]
            combined = piece.copy() if combined is None else combined & piece
            offset += part
    assert combined is not None
    return combined


def digit_rows(data: NDArray[np.uint8], starts: Starts, length: int) -> DigitRows:
    """The candidates starting at `starts`, as a matrix of digit values."""
    rows: DigitRows = data[starts[:, None] + np.arange(length)] - np.uint8(ZERO)
    return rows


def number(rows: DigitRows, first: int, count: int) -> NDArray[np.int64]:
    """The integer written by `count` digits from column `first` of each row."""
    powers = 10 ** np.arange(count - 1, -1, -1, dtype=np.int64)
    value: NDArray[np.int64] = rows[:, first:first + count] @ powers
    return value


def weighted(rows: DigitRows, weights: tuple[int, ...]) -> NDArray[np.int64]:
    """The sum of each row's leading digits times `weights` (a checksum's first step)."""
    total: NDArray[np.int64] = rows[:, :len(weights)].astype(np.int64) @ np.array(
        weights, dtype=np.int64)
    return total


DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] + [0] * 87,
                         dtype=np.int64)


def real_dates(year: NDArray[np.int64], month: NDArray[np.int64],
               day: NDArray[np.int64]) -> Mask:
    """Which (year, month, day) are real calendar dates (month 0-99, day 0-99)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    fits: Mask = (day >= 1) & (day <= DAYS_IN_MONTH[month]) & \
        ~((month == 2) & (day == 29) & ~leap)
    return fits


PLUS, ONE, LOWER_CASE_BIT, LOWER_E = 43, 49, 32, 101


def exponent_marks(text: bytes) -> bool:
    """Whether `E+1` or `e+1` (a number in scientific notation) occurs in the text."""
    if len(text) < BLOCK_BYTES:
        return b"E+1" in text or b"e+1" in text
    data = as_array(text)
    for start in range(0, len(data), BLOCK_BYTES):
        block = data[max(start - 1, 0):start + BLOCK_BYTES + 1]
        plus = np.flatnonzero(block[1:-1] == PLUS) + 1
        if len(plus) and (((block[plus - 1] | LOWER_CASE_BIT) == LOWER_E)
                          & (block[plus + 1] == ONE)).any():
            return True
    return False
