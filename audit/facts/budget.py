"""A check's time budget, handed to every probe by its target context.

The engine gives each check a timeout (the run's `--timeout`, or the check's own `timeout:` in
the profile). A probe never computes its waits from that number itself: it asks the budget for
a step (how long one connection or request may wait), for a phase (a deadline for work that
must stop in time to report what it found), or for what remains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Budget:
    """`seconds` of time from `started` (monotonic clock)."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """When the check's time is up (monotonic clock)."""
        return self.started + self.seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.deadline - time.monotonic())

    def step(self, share: float = 0.25, low: float = 1.0, high: float | None = 10.0) -> float:
        """How long one step (a connection, a request, a handshake) may wait: a share of the
        whole budget, at least `low` so a slow but honest peer can answer, at most `high` so
        one silent peer does not eat the check's time."""
        seconds = max(low, self.seconds * share)
        return seconds if high is None else min(high, seconds)

    def phase_deadline(self, share: float) -> float:
        """The monotonic time by which work taking `share` of the budget must stop, leaving
        the rest to judge and report what it found."""
        return self.started + self.seconds * share
