"""What changed between two runs: regressions, newly judged results and fixes.

Works on snapshots (a status and a summary per control, check and target) so that a stored
results.json and a run kept in the history store compare the same way.

- *regressed*: was passing (pass or waived), now fails or errors.
- *newly judged*: was absent or not applicable, now has a status (an inventory that gained a
  target or a service does this): listed when it does not pass, never a regression.
- *fixed*: did not pass (fail, error or manual), now passes or is waived.
Other moves (fail to error, pass to not applicable...) are none of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.model.results import FindingChange, RunResults
from audit.vocabulary import Status

ResultKey = tuple[str, str, str]            # control, check, target
Snapshot = dict[ResultKey, tuple[Status, str]]

PASSING = frozenset({Status.PASS, Status.WAIVED})
FAILING = frozenset({Status.FAIL, Status.ERROR})
NOT_PASSING = FAILING | {Status.MANUAL}

SUMMARY_LIMIT = 500


@dataclass(frozen=True)
class RunDiff:
    """The changes from an older run to a newer one."""

    regressions: list[FindingChange]
    fixes: list[FindingChange]
    new: list[FindingChange]        # newly judged and not passing
    newly_passing: int = 0          # newly judged and passing: counted, not listed

    @property
    def unchanged(self) -> bool:
        """Whether nothing regressed, got fixed or was newly judged."""
        return not (self.regressions or self.fixes or self.new or self.newly_passing)

    def failed(self, strict: bool = False) -> bool:
        """Whether the diff is a failure: something regressed (strict: or is newly judged
        and not passing)."""
        return bool(self.regressions or (strict and self.new))


def snapshot(results: RunResults) -> Snapshot:
    """The statuses of a run, by control, check and target."""
    return {(r.control, r.check, r.target): (r.status, r.summary[:SUMMARY_LIMIT])
            for r in results.results}


def diff_snapshots(old: Snapshot, new: Snapshot) -> RunDiff:
    """Classify every result of `new` against `old`; results that vanished are not listed."""
    regressions: list[FindingChange] = []
    fixes: list[FindingChange] = []
    judged: list[FindingChange] = []
    newly_passing = 0
    for key in sorted(new):
        after, summary = new[key]
        before = old[key][0] if key in old else None
        change = FindingChange(control=key[0], check=key[1], target=key[2], before=before,
                               after=after, summary=summary)
        if before in (None, Status.NOT_APPLICABLE):
            if after in NOT_PASSING:
                judged.append(change)
            elif after in PASSING:
                newly_passing += 1
        elif before in PASSING and after in FAILING:
            regressions.append(change)
        elif before in NOT_PASSING and after in PASSING:
            fixes.append(change)
    return RunDiff(regressions, fixes, judged, newly_passing)
