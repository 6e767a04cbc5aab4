"""Profiles: the minimum requirements, as controls that name checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from audit.vocabulary import LocalizedText, Severity, Strict

ControlId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
ProfileId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]


class ReferenceKind(StrEnum):
    """How binding a reference is: the report words it accordingly."""

    LAW = "law"                # an act in force, cited by a source document
    PROPOSAL = "proposal"      # a reform proposal: "recommended practice"
    EXTERNAL = "external"      # from outside the source documents
    VERIFY = "verify"          # cited by a source but not confirmed: shown as unconfirmed


class Reference(Strict):
    """Where a requirement comes from."""

    text: str = Field(min_length=1)
    kind: ReferenceKind
    source: str | None = None

    @model_validator(mode="after")
    def _law_needs_a_source(self) -> Reference:
        if self.kind is ReferenceKind.LAW and not self.source:
            raise ValueError("a reference of kind 'law' needs a source")
        return self


class CheckRef(Strict):
    """One check a control runs, with its parameters (validated against the check's model)."""

    check: str = Field(min_length=1)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class Control(Strict):
    """One requirement."""

    id: ControlId
    title: LocalizedText
    severity: Severity
    references: list[Reference] = Field(default_factory=list)
    rationale: LocalizedText | None = None
    remediation: LocalizedText | None = None
    # No checks: the control is `manual` until an assessor's evidence decides it.
    checks: list[CheckRef] = Field(default_factory=list)


class Disable(Strict):
    """A control a tailoring profile switches off, and why."""

    control: ControlId
    reason: str = Field(min_length=1)


class Tailoring(Strict):
    """Changes a tailoring profile makes to an inherited control."""

    severity: Severity | None = None
    with_: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="with")


class Profile(Strict):
    """A profile file as written."""

    id: ProfileId
    title: LocalizedText
    version: str = Field(min_length=1)
    description: LocalizedText | None = None
    extends: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=0, le=100)
    weights: dict[Severity, Annotated[int, Field(ge=0)]] | None = None
    controls: list[Control] = Field(default_factory=list)
    disable: list[Disable] = Field(default_factory=list)
    tailor: dict[ControlId, Tailoring] = Field(default_factory=dict)
