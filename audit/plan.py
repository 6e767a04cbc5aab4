"""The plan: every (control, check, target) pair that will get exactly one result."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest

from audit.model.inventory import Target
from audit.profiles import PlannedCheck, ResolvedProfile
from audit.vocabulary import Role

ORGANISATION_TARGET = "organisation"
# A control without checks is decided by an assessor: it is planned as this pseudo-check.
MANUAL_CHECK = "manual"
# Targets whose items are interleaved together: enough for every worker of a run (`--jobs`
# is 32 by default) to have a target of its own.
INTERLEAVED_TARGETS = 64


@dataclass(frozen=True)
class PlanItem:
    """One unit of work for the engine."""

    control: str
    check: PlannedCheck | None       # None: a manual control
    target: str

    @property
    def check_id(self) -> str:
        """The check's id, or `manual`."""
        return self.check.spec.id if self.check else MANUAL_CHECK


def roles_of(target: Target) -> frozenset[Role]:
    """A target's roles."""
    return frozenset(target.roles)


def build_plan(profile: ResolvedProfile, targets: list[Target]) -> list[PlanItem]:
    """Match each control's checks to the targets whose roles they apply to.

    Items are interleaved across targets so that concurrent workers spread over targets
    instead of queueing on one target's facts, `INTERLEAVED_TARGETS` targets at a time: a
    target's items then end together, soon after they start, and its facts are let go
    (`audit.engine.run_plan`), so a run holds the facts of a few dozen targets, not of all.
    """
    per_target: dict[str, list[PlanItem]] = {ORGANISATION_TARGET: []}
    for target in targets:
        per_target[target.name] = []
    for resolved in profile.controls:
        control_id = resolved.control.id
        if not resolved.checks:
            per_target[ORGANISATION_TARGET].append(PlanItem(control_id, None, ORGANISATION_TARGET))
        for planned in resolved.checks:
            if Role.ORGANISATION in planned.spec.applies_to:
                per_target[ORGANISATION_TARGET].append(
                    PlanItem(control_id, planned, ORGANISATION_TARGET))
            for target in targets:
                if roles_of(target) & planned.spec.applies_to:
                    per_target[target.name].append(PlanItem(control_id, planned, target.name))
    rows = [row for row in per_target.values() if row]
    return [item for start in range(0, len(rows), INTERLEAVED_TARGETS)
            for row in zip_longest(*rows[start:start + INTERLEAVED_TARGETS])
            for item in row if item]
