"""results.json: the canonical record of a run. Every report is rendered from it alone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from audit.messages import Message
from audit.model.attestation import AppliedAttestation, AttestationOutcome
from audit.model.profile import Reference
from audit.model.waiver import Waiver
from audit.vocabulary import LocalizedText, Role, Severity, Status, Strict, Verdict

SCHEMA_VERSION = "1.0"


class ErrorInfo(Strict):
    """Why a result is `error` (or `not_applicable` because the transport cannot tell)."""

    type: str
    message: str


class Evidence(Strict):
    """What was observed against what was expected, and structured detail."""

    observed: Any = None
    expected: Any = None
    details: dict[str, Any] = Field(default_factory=dict)


class AppliedWaiver(Strict):
    """The waiver that turned a failure into `waived`."""

    reason: str
    approved_by: str
    expires: date
    target_pattern: str
    risk: str | None = None


class Result(Strict):
    """One check on one target for one control."""

    control: str
    check: str
    target: str
    status: Status
    summary: str
    # The summary as a template and its values, for reports in another language.
    message: Message | None = None
    evidence: Evidence = Field(default_factory=Evidence)
    error: ErrorInfo | None = None
    waiver: AppliedWaiver | None = None
    # Set when an attestation decided this (formerly manual) result, or had expired for it.
    attestation: AppliedAttestation | None = None
    duration_ms: int = 0


class ControlOutcome(Strict):
    """A control's result on the whole system, with what a report needs to explain it."""

    id: str
    title: LocalizedText
    severity: Severity
    weight: int
    references: list[Reference] = Field(default_factory=list)
    rationale: LocalizedText | None = None
    remediation: LocalizedText | None = None
    status: Status
    earned: bool
    targets: dict[str, Status] = Field(default_factory=dict)
    # A partial control: what its automated checks do not cover.
    partial: LocalizedText | None = None


class Blocker(Strict):
    """Something that keeps the verdict from `ready`."""

    control: str | None
    status: Status | None
    summary: str


class ProfileRecord(Strict):
    """A profile used by the run, pinned by its content hash."""

    id: str
    title: LocalizedText
    version: str
    sha256: str
    source: str


class DisabledControl(Strict):
    """A control a tailoring profile switched off, kept visible in the record."""

    control: str
    reason: str
    profile: str


class TargetRecord(Strict):
    """A target as the report's scope section shows it: never a secret."""

    name: str
    address: str | None = None
    roles: list[Role]
    site: str | None = None
    transport: str | None = None
    credential: str | None = None
    # The address of the scanner host that reaches the target (what "reachable" is from).
    source_address: str | None = None
    # Who the host review logs in as, and with which privileges.
    account: str | None = None


class RunMethod(Strict):
    """How and from where the run looked: for the report's method section."""

    scanner_host: str
    tools: dict[str, str] = Field(default_factory=dict)      # name -> version
    ports_scanned: list[int] = Field(default_factory=list)
    host_commands: list[str] = Field(default_factory=list)


class ScopeRecord(Strict):
    """The inventory's declared scope."""

    networks: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)


class InputFiles(Strict):
    """The input files the run read, as absolute paths on the machine that ran it: evidence
    paths recorded relative resolve from their directories (what `mis-audit seal` pins)."""

    inventory: str | None = None
    waivers: str | None = None
    attestations: str | None = None


class WaiverRecord(Strict):
    """The waivers given, sorted by what happened to them."""

    applied: list[Waiver] = Field(default_factory=list)
    expired: list[Waiver] = Field(default_factory=list)
    unmatched: list[Waiver] = Field(default_factory=list)


class Tool(Strict):
    """The tool that produced the record."""

    name: str = "mis-audit"
    version: str


class RunDigest(Strict):
    """One recorded run, as a trend line shows it."""

    run_id: int
    started_at: datetime
    score: float
    verdict: Verdict
    complete: bool


class FindingChange(Strict):
    """A (control, check, target) whose status changed between two runs."""

    control: str
    check: str
    target: str
    before: Status | None
    after: Status | None
    summary: str


class HistorySummary(Strict):
    """What the history store knew when the run was recorded: the trend and the changes."""

    run_id: int
    previous: RunDigest | None = None
    regressions: list[FindingChange] = Field(default_factory=list)
    fixes: list[FindingChange] = Field(default_factory=list)
    new: list[FindingChange] = Field(default_factory=list)
    trend: list[RunDigest] = Field(default_factory=list)
    # Against the previous run of the series; None when it cannot tell (no previous run, or
    # one recorded by a version that kept no fingerprints).
    profile_changed: bool | None = None
    inventory_changed: bool | None = None
    previous_profiles: str | None = None


class SiteOutcome(Strict):
    """One site's part of the system: its targets scored on their own (with the organisation's
    results, which every site shares)."""

    name: str
    targets: list[str]
    score: float
    verdict: Verdict
    blockers: int
    scanner_host: str | None = None
    # The results.json this site's part came from, when the run is a merge.
    source: str | None = None


class HistoryError(Strict):
    """Why the run is not in the history store: where it was (redacted) and what failed."""

    location: str
    reason: str


class RunResults(Strict):
    """The whole record of one run."""

    schema_version: str = SCHEMA_VERSION
    tool: Tool
    started_at: datetime
    finished_at: datetime
    complete: bool
    organisation: str
    system: str | None = None
    profiles: list[ProfileRecord]
    # The roots of the profiles' `extends` chains: the history series the run belongs to.
    profile_family: str | None = None
    disabled: list[DisabledControl] = Field(default_factory=list)
    scope: ScopeRecord
    # SHA-256 of the validated inventory (not its file: comments and layout do not count).
    inventory_sha256: str | None = None
    targets: list[TargetRecord]
    checks_run: list[str]
    results: list[Result]
    controls: list[ControlOutcome]
    threshold: float
    weights: dict[Severity, int]
    score: float
    verdict: Verdict
    blockers: list[Blocker]
    waivers: WaiverRecord = Field(default_factory=WaiverRecord)
    attestations: AttestationOutcome = Field(default_factory=AttestationOutcome)
    inputs: InputFiles = Field(default_factory=InputFiles)
    # One line each: inventory entries and waivers that nothing used.
    warnings: list[str] = Field(default_factory=list)
    method: RunMethod | None = None
    # Per site, when targets name their site (a merge of per-site runs always does).
    sites: list[SiteOutcome] = Field(default_factory=list)
    # Embedded after the run is recorded, so a report rendered from this file alone shows it.
    history: HistorySummary | None = None
    # Set instead when the store could not record the run (the run itself still counts).
    history_error: HistoryError | None = None
