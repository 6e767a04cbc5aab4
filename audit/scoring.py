"""Waivers, control results, the score and the verdict, exactly as DESIGN.md defines them."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from audit.model.profile import Control
from audit.model.results import AppliedWaiver, Blocker, ControlOutcome, Result, WaiverRecord
from audit.model.waiver import Waiver
from audit.profiles import ResolvedProfile
from audit.vocabulary import Severity, Status, Verdict

# Worst first: a control is as bad as its worst result across targets.
_CONTROL_ORDER = (Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED, Status.PASS)
_EARNING = frozenset({Status.PASS, Status.WAIVED})
_BLOCKING = frozenset({Status.FAIL, Status.ERROR, Status.MANUAL})


def apply_waivers(results: list[Result], active: list[Waiver],
                  expired: list[Waiver]) -> tuple[list[Result], WaiverRecord]:
    """Turn failures covered by a valid waiver into `waived`; report unused waivers."""
    used: set[int] = set()
    waived_results = []
    for result in results:
        waiver_index = _matching_waiver(result, active) if result.status is Status.FAIL else None
        if waiver_index is None:
            waived_results.append(result)
            continue
        used.add(waiver_index)
        waiver = active[waiver_index]
        waived_results.append(result.model_copy(update={
            "status": Status.WAIVED,
            "waiver": AppliedWaiver(reason=waiver.reason, approved_by=waiver.approved_by,
                                    expires=waiver.expires, target_pattern=waiver.target,
                                    risk=waiver.risk.value if waiver.risk else None)}))
    record = WaiverRecord(applied=[w for i, w in enumerate(active) if i in used],
                          expired=list(expired),
                          unmatched=[w for i, w in enumerate(active) if i not in used])
    return waived_results, record


def _matching_waiver(result: Result, waivers: list[Waiver]) -> int | None:
    for index, waiver in enumerate(waivers):
        if waiver.control == result.control and fnmatchcase(result.target, waiver.target):
            return index
    return None


def control_status(statuses: list[Status]) -> Status:
    """The worst status across targets; `not_applicable` ones are ignored."""
    relevant = [status for status in statuses if status is not Status.NOT_APPLICABLE]
    for status in _CONTROL_ORDER:
        if status in relevant:
            return status
    return Status.NOT_APPLICABLE


@dataclass(frozen=True)
class Scorecard:
    """The system-wide outcome."""

    controls: list[ControlOutcome]
    score: float
    verdict: Verdict
    blockers: list[Blocker]


def score(profile: ResolvedProfile, results: list[Result]) -> Scorecard:
    """Control outcomes, score (0-100), verdict and blockers."""
    return score_controls([_unjudged(resolved.control, profile.weights[resolved.control.severity])
                           for resolved in profile.controls], results, profile.threshold)


def score_controls(controls: list[ControlOutcome], results: list[Result],
                   threshold: float) -> Scorecard:
    """The scorecard of `results` for controls described as a run records them (their
    statuses are judged afresh): a merge of several runs, or one site of a run."""
    by_control: dict[str, list[Result]] = {}
    for result in results:
        by_control.setdefault(result.control, []).append(result)
    outcomes = [_outcome(control, by_control.get(control.id, [])) for control in controls]
    applicable = [o for o in outcomes if o.status is not Status.NOT_APPLICABLE]
    total = sum(o.weight for o in applicable)
    earned = sum(o.weight for o in applicable if o.earned)
    value = round(100.0 * earned / total, 2) if total else 0.0
    blockers = [Blocker(control=o.id, status=o.status,
                        summary=f"critical control {o.id} is {o.status.value}")
                for o in outcomes if o.severity is Severity.CRITICAL and o.status in _BLOCKING]
    if value < threshold:
        blockers.append(Blocker(control=None, status=None,
                                summary=f"score {value:g} is below the threshold "
                                        f"{threshold:g}"))
    verdict = Verdict.NOT_READY if blockers else Verdict.READY
    return Scorecard(outcomes, value, verdict, blockers)


def _unjudged(control: Control, weight: int) -> ControlOutcome:
    return ControlOutcome(id=control.id, title=control.title, severity=control.severity,
                          weight=weight, references=control.references,
                          rationale=control.rationale, remediation=control.remediation,
                          status=Status.NOT_APPLICABLE, earned=False, partial=control.partial)


def _outcome(control: ControlOutcome, results: list[Result]) -> ControlOutcome:
    targets: dict[str, Status] = {}
    for result in results:
        previous = targets.get(result.target)
        targets[result.target] = control_status([result.status] + ([previous] if previous else []))
    status = control_status([r.status for r in results])
    return control.model_copy(update={"status": status, "earned": status in _EARNING,
                                      "targets": dict(sorted(targets.items()))})
