"""What changed between two runs: regressions, fixes and new findings.

Works on snapshots (a status and a summary per control, check and target) so that a stored
results.json and a run kept in the history store compare the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.model.results import FindingChange, RunResults
from audit.vocabulary import Status

ResultKey = tuple[str, str, str]            # control, check, target
Snapshot = dict[ResultKey, tuple[Status, str]]

# How bad a status is for a diff: could-not-tell is worse than passing, better than failing.
_BADNESS: dict[Status, int] = {
    Status.PASS: 0,
    Status.WAIVED: 0,
    Status.NOT_APPLICABLE: 0,
    Status.MANUAL: 1,
    Status.ERROR: 1,
    Status.FAIL: 2,
}

SUMMARY_LIMIT = 500


@dataclass(frozen=True)
class RunDiff:
    """The changes from an older run to a newer one."""

    regressions: list[FindingChange]
    fixes: list[FindingChange]
    new: list[FindingChange]

    @property
    def unchanged(self) -> bool:
        """Whether nothing regressed, got fixed or appeared."""
        return not (self.regressions or self.fixes or self.new)


def snapshot(results: RunResults) -> Snapshot:
    """The statuses of a run, by control, check and target."""
    return {(r.control, r.check, r.target): (r.status, r.summary[:SUMMARY_LIMIT])
            for r in results.results}


def diff_snapshots(old: Snapshot, new: Snapshot) -> RunDiff:
    """Classify every result of `new` against `old`; results that vanished are not listed."""
    regressions: list[FindingChange] = []
    fixes: list[FindingChange] = []
    found: list[FindingChange] = []
    for key in sorted(new):
        after, summary = new[key]
        before = old[key][0] if key in old else None
        change = FindingChange(control=key[0], check=key[1], target=key[2], before=before,
                               after=after, summary=summary)
        if before is None:
            if _BADNESS[after] > 0:
                found.append(change)
        elif _BADNESS[after] > _BADNESS[before]:
            regressions.append(change)
        elif _BADNESS[after] < _BADNESS[before]:
            fixes.append(change)
    return RunDiff(regressions, fixes, found)
