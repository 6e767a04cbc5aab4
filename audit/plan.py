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
    instead of queueing on one target's facts.
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
    return [item for row in zip_longest(*per_target.values()) for item in row if item]
