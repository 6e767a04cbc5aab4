"""Attestations: an assessor's recorded judgement of a control no automated check decides.

Modelled on MITRE SAF attestations for InSpec: a control (and optionally a target pattern), the
status the assessor found, why, who, when, and until when it stays valid (a date, or a review
frequency counted from the attestation's date). It turns a `manual` result into pass or fail;
it never overrides a result an automated check gave.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, RootModel, model_validator

from audit.model.profile import ControlId
from audit.vocabulary import Strict


class AttestedStatus(StrEnum):
    """What the assessor found."""

    PASS = "pass"
    FAIL = "fail"


class Frequency(StrEnum):
    """How often the attested control is reviewed (its validity, counted from `date`)."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUALLY = "semiannually"
    ANNUALLY = "annually"


FREQUENCY_DAYS: dict[Frequency, int] = {
    Frequency.DAILY: 1, Frequency.WEEKLY: 7, Frequency.MONTHLY: 31, Frequency.QUARTERLY: 92,
    Frequency.SEMIANNUALLY: 183, Frequency.ANNUALLY: 366,
}


class Attestation(Strict):
    """One attestation as a user writes it."""

    control: ControlId
    target: str = Field(default="*", min_length=1, description="fnmatch pattern on target "
                        "names (a control without checks is judged on `organisation`).")
    status: AttestedStatus
    explanation: str = Field(min_length=1, description="What was reviewed and what it showed.")
    attested_by: str = Field(min_length=1, description="Who attests (name, position).")
    date: dt.date = Field(description="When the review was made.")
    expires: dt.date | None = Field(default=None, description="Valid until this date "
                                    "(or give `frequency`).")
    frequency: Frequency | None = Field(default=None, description="Review frequency: valid "
                                        "for that long after `date` (or give `expires`).")
    evidence: str | None = Field(default=None, min_length=1, description="A file supporting "
                                 "it, relative to the attestations file; its SHA-256 is "
                                 "recorded.")

    @model_validator(mode="after")
    def _one_validity(self) -> Attestation:
        if (self.expires is None) == (self.frequency is None):
            raise ValueError("give exactly one of expires or frequency")
        if self.expires is not None and self.expires < self.date:
            raise ValueError(f"expires ({self.expires.isoformat()}) is before the "
                             f"attestation's date ({self.date.isoformat()})")
        return self

    @property
    def valid_until(self) -> dt.date:
        """The last day the attestation applies."""
        if self.expires is not None:
            return self.expires
        assert self.frequency is not None
        return self.date + dt.timedelta(days=FREQUENCY_DAYS[self.frequency])


class AttestationList(Strict):
    """An attestations file written as a mapping with an `attestations` list."""

    attestations: list[Attestation]


class AttestationFile(RootModel[list[Attestation] | AttestationList]):
    """An attestations file: a list of attestations, or a mapping with an `attestations` list."""


class AttestationEvidence(Strict):
    """The file an attestation names, pinned by its content hash."""

    file: str
    sha256: str
    size: int


class AttestationRecord(Strict):
    """An attestation as results.json keeps it: what was written, its validity and its file."""

    control: str
    target: str
    status: AttestedStatus
    explanation: str
    attested_by: str
    date: dt.date
    valid_until: dt.date
    frequency: Frequency | None = None
    evidence: AttestationEvidence | None = None


class AppliedAttestation(AttestationRecord):
    """The attestation that decided a `manual` result, or (`expired`) that no longer could."""

    expired: bool = False


class AttestationOutcome(Strict):
    """The attestations given, sorted by what happened to them."""

    applied: list[AttestationRecord] = Field(default_factory=list)
    expired: list[AttestationRecord] = Field(default_factory=list)
    # Matched no manual result: its control was decided by automated checks, or is not run.
    unmatched: list[AttestationRecord] = Field(default_factory=list)
