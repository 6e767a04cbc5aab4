"""Profiles: the minimum requirements, as controls that name checks.

A requirement that several profiles share (two-factor authentication, an incident response
plan) is written once in the packaged control library (`profiles/controls/*.yaml`: title,
rationale, remediation, checks). A profile then *uses* it by id and adds what differs between
jurisdictions: the references, the severity, and parameter overrides. A profile may still
define a control inline, with every field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from audit.vocabulary import Lang, LocalizedText, Severity, Strict

ControlId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
ProfileId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
# Parameter overrides per check id: {check_id: {parameter: value}}.
CheckOverrides = dict[str, dict[str, Any]]


class ReferenceKind(StrEnum):
    """How binding a reference is: the report words it accordingly."""

    LAW = "law"                # an act in force, cited by a source document
    PROPOSAL = "proposal"      # a reform proposal: "recommended practice"
    EXTERNAL = "external"      # from outside the source documents
    VERIFY = "verify"          # cited by a source but not confirmed: shown as unconfirmed
    # A failure seen in a real incident: why the control exists, never a legal basis.
    INCIDENT = "incident"


class Reference(Strict):
    """Where a requirement comes from."""

    text: str = Field(min_length=1)
    kind: ReferenceKind
    source: str | None = None
    # The text in a report's other languages: a law's official title in Russian and Kazakh,
    # an incident as the source reported it.
    translations: dict[Lang, str] = Field(default_factory=dict)

    def text_in(self, lang: Lang) -> str:
        """The text as a report in `lang` cites it (the English text without a translation)."""
        return self.translations.get(lang) or self.text

    @model_validator(mode="after")
    def _law_needs_a_source(self) -> Reference:
        if self.kind is ReferenceKind.LAW and not self.source:
            raise ValueError("a reference of kind 'law' needs a source")
        return self


class CheckRef(Strict):
    """One check a control runs, with its parameters (validated against the check's model)."""

    check: str = Field(min_length=1)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    # Seconds this check may take, instead of the run's --timeout (a large share's scan).
    timeout: float | None = Field(default=None, gt=0, le=86400)


class Control(Strict):
    """One requirement, complete: what a run is scored against and results.json records."""

    id: ControlId
    title: LocalizedText
    severity: Severity
    references: list[Reference] = Field(default_factory=list)
    rationale: LocalizedText | None = None
    remediation: LocalizedText | None = None
    # No checks: the control is `manual` until an assessor's evidence decides it.
    checks: list[CheckRef] = Field(default_factory=list)
    # Its checks cover only part of the title: what they leave out. The control stays `manual`
    # until an attestation covers the rest.
    partial: LocalizedText | None = None


class LibraryControl(Strict):
    """A control of the shared library: what it is and how it is checked, for any profile."""

    id: ControlId
    title: LocalizedText
    rationale: LocalizedText
    remediation: LocalizedText
    # A default the profiles usually set themselves; a profile must state one if this is empty.
    severity: Severity | None = None
    references: list[Reference] = Field(default_factory=list)
    checks: list[CheckRef] = Field(default_factory=list)
    # `partial: true` with `partial_note`: the checks cover only part of the title.
    partial: bool = False
    partial_note: LocalizedText | None = None

    @model_validator(mode="after")
    def _partial_says_what_is_missing(self) -> LibraryControl:
        if self.partial and (self.partial_note is None or not self.checks):
            raise ValueError("a partial control needs checks and a partial_note saying what "
                             "they do not cover")
        if self.partial_note is not None and not self.partial:
            raise ValueError("partial_note is given but partial is not true")
        return self


class ControlLibrary(Strict):
    """One file of the control library."""

    controls: list[LibraryControl] = Field(min_length=1)


class ControlEntry(Strict):
    """A control as a profile writes it: either `use: <library id>` with what this profile
    adds, or an inline definition with `id`, `title` and `severity`."""

    use: ControlId | None = None
    id: ControlId | None = None
    title: LocalizedText | None = None
    severity: Severity | None = None
    # With `use`, added after the library's own references.
    references: list[Reference] = Field(default_factory=list)
    rationale: LocalizedText | None = None
    remediation: LocalizedText | None = None
    # With `use`, replaces the library's checks; leave it out to keep them.
    checks: list[CheckRef] | None = None
    # With `use`, parameter overrides of the library's checks, as in `tailor`.
    with_: CheckOverrides = Field(default_factory=dict, alias="with")

    @model_validator(mode="after")
    def _either_use_or_inline(self) -> ControlEntry:
        # Worded like pydantic's own errors, so that a missing key reads the same everywhere.
        if self.use is not None:
            if self.id is not None:
                raise PydanticCustomError("use_and_id", "give either 'use' (a library "
                                          "control) or 'id' (an inline control), not both")
            return self
        for name in ("id", "title", "severity"):
            if getattr(self, name) is None:
                raise PydanticCustomError(
                    "missing_key", f"{name}: required key is missing (an inline control needs "
                               f"id, title and severity; or 'use' takes a library control)")
        if self.with_:
            raise PydanticCustomError("with_on_inline", "'with' overrides a library "
                                      "control's checks: give the parameters in 'checks'")
        return self

    @property
    def control_id(self) -> str:
        """The id of the control this entry defines."""
        return self.use or self.id or ""


class Disable(Strict):
    """A control a tailoring profile switches off, and why."""

    control: ControlId
    reason: str = Field(min_length=1)


class Tailoring(Strict):
    """Changes a tailoring profile makes to an inherited control."""

    severity: Severity | None = None
    with_: CheckOverrides = Field(default_factory=dict, alias="with")


class Profile(Strict):
    """A profile file as written."""

    id: ProfileId
    title: LocalizedText
    version: str = Field(min_length=1)
    description: LocalizedText | None = None
    extends: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=0, le=100)
    weights: dict[Severity, Annotated[int, Field(ge=0, le=1000)]] | None = None
    controls: list[ControlEntry] = Field(default_factory=list)
    disable: list[Disable] = Field(default_factory=list)
    tailor: dict[ControlId, Tailoring] = Field(default_factory=dict)
