"""Logs for machines (`--log-format json`): one JSON object per event on stderr, for
journald or a log collector. Events: run_started, check_error, target_finished, run_finished.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from audit.model.results import Result
from audit.vocabulary import Status


def emit(stream: IO[str], event: str, **fields: Any) -> None:
    """Write one event line (and flush: a collector reads it as it comes)."""
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event,
              **fields}
    stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    stream.flush()


class JsonEventLog:
    """An engine observer: a check's error as it happens, a target when its last check ends."""

    def __init__(self, stream: IO[str], planned_targets: Iterable[str],
                 already: Sequence[Result] = ()) -> None:
        self._stream = stream
        self._left = Counter(planned_targets)
        self._statuses: dict[str, Counter[str]] = {}
        for result in already:        # a resumed run: what finished before counts too
            self._count(result)

    def started(self, total: int) -> None:
        """The run starts probing."""
        emit(self._stream, "run_started", checks=total, targets=len(self._left))

    def finished(self, result: Result) -> None:
        """Count the result; report an error at once, and a target once it is done."""
        if result.status is Status.ERROR:
            emit(self._stream, "check_error", check=result.check, target=result.target,
                 reason=result.error.type if result.error else None, message=result.summary)
        if self._count(result) == 0:
            emit(self._stream, "target_finished", target=result.target,
                 statuses=dict(sorted(self._statuses[result.target].items())))

    def _count(self, result: Result) -> int:
        self._statuses.setdefault(result.target, Counter())[result.status.value] += 1
        self._left[result.target] -= 1
        return self._left[result.target]
