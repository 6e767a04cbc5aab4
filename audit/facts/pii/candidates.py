"""The valid identifiers among a chunk's bare digit runs, found by the detectors that claim
each run length: validated a matrix at a time (`RowClassifier`), or one by one for a detector
that only has `classify`.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping

import numpy as np

from audit.facts.pii.detectors import Detector, Kind, RowClassifier, kinds_of
from audit.facts.pii.digits import (
    SMALL_TEXT,
    Mask,
    Starts,
    as_array,
    digit_rows,
    digit_runs,
)


def valid_runs(text: bytes, by_length: Mapping[int, tuple[Detector, ...]],
               unwanted: frozenset[Kind] = frozenset(), small_text: int = SMALL_TEXT
               ) -> defaultdict[Kind, list[bytes]]:
    """The valid identifiers among the digit runs of `text`, by kind, in text order, except
    those of `unwanted` kinds. A run is claimed by the first detector of its length that
    finds it valid; a length whose detectors can find only unwanted kinds is not looked at.
    Text shorter than `small_text` is read run by run: a caller whose text is dense with
    candidates says a smaller size."""
    lengths = frozenset(length for length, detectors in by_length.items()
                        if not all(kinds_of(detector) and kinds_of(detector) <= unwanted
                                   for detector in detectors))
    if len(text) < small_text:
        return _valid_runs_of_small(text, by_length, lengths, unwanted)
    data = as_array(text)
    claimed: dict[Kind, list[tuple[Starts, int]]] = {}
    for length, starts in digit_runs(data, lengths).items():
        if len(starts):
            for kind, kind_starts in _claims(text, data, starts, length, by_length[length]):
                if kind not in unwanted:
                    claimed.setdefault(kind, []).append((kind_starts, length))
    found: defaultdict[Kind, list[bytes]] = defaultdict(list)
    for kind, groups in claimed.items():
        if len(groups) == 1:
            (starts, length), = groups
            found[kind] = [text[start:start + length] for start in starts.tolist()]
            continue
        # One kind from runs of several lengths: back into text order.
        every_start = np.concatenate([starts for starts, _ in groups])
        every_length = np.concatenate([np.full(len(starts), length) for starts, length in groups])
        order = np.argsort(every_start, kind="stable")
        found[kind] = [text[start:start + length] for start, length in
                       zip(every_start[order].tolist(), every_length[order].tolist())]
    return found


@functools.cache
def _runs_pattern(shortest: int) -> re.Pattern[bytes]:
    # A match starts at a run's first digit, so no look-behind is needed.
    return re.compile(rb"[0-9]{%d,}" % shortest)


def _valid_runs_of_small(text: bytes, by_length: Mapping[int, tuple[Detector, ...]],
                         lengths: frozenset[int], unwanted: frozenset[Kind]
                         ) -> defaultdict[Kind, list[bytes]]:
    found: defaultdict[Kind, list[bytes]] = defaultdict(list)
    if not lengths:
        return found
    for run in _runs_pattern(min(lengths)).findall(text):
        if len(run) in lengths:
            for detector in by_length[len(run)]:
                kind = detector.classify(run)
                if kind is not None:
                    if kind not in unwanted:
                        found[kind].append(run)
                    break
    return found


def _claims(text: bytes, data: np.ndarray, starts: Starts, length: int,
            detectors: tuple[Detector, ...]) -> Iterator[tuple[Kind, Starts]]:
    rows = digit_rows(data, starts, length)
    unclaimed: Mask = np.ones(len(starts), dtype=np.bool_)
    for detector in detectors:
        if isinstance(detector, RowClassifier):
            masks = detector.classify_rows(rows)
        else:
            masks = _one_by_one(detector, text, starts, length, unclaimed)
        for kind, valid in masks.items():
            valid = valid & unclaimed
            if valid.any():
                yield kind, starts[valid]
                unclaimed &= ~valid
        if not unclaimed.any():
            return


def _one_by_one(detector: Detector, text: bytes, starts: Starts, length: int,
                unclaimed: Mask) -> dict[Kind, Mask]:
    masks: dict[Kind, Mask] = {}
    for index in np.flatnonzero(unclaimed).tolist():
        start = int(starts[index])
        kind = detector.classify(text[start:start + length])
        if kind is not None:
            masks.setdefault(kind, np.zeros(len(starts), dtype=np.bool_))[index] = True
    return masks
