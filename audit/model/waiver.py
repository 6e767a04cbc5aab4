"""Waivers: an accepted risk on a control, for named targets, until a date."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, RootModel

from audit.model.profile import ControlId
from audit.vocabulary import Strict


class RiskRating(StrEnum):
    """The residual risk the approver accepted."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Waiver(Strict):
    """One accepted risk."""

    control: ControlId
    target: str = Field(default="*", min_length=1)   # fnmatch pattern on target names
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    expires: date
    risk: RiskRating | None = None


class WaiverList(Strict):
    """A waivers file written as a mapping with a `waivers` list."""

    waivers: list[Waiver]


class WaiverFile(RootModel[list[Waiver] | WaiverList]):
    """A waivers file: a list of waivers, or a mapping with a `waivers` list."""
