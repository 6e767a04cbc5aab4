"""What an assessor decides: partial controls' open remainder, and attestations that decide
`manual` results. Automated results are never touched here."""

from __future__ import annotations

from fnmatch import fnmatchcase

from audit.messages import says
from audit.model.attestation import AppliedAttestation, AttestationOutcome, AttestationRecord
from audit.model.results import Evidence, Result
from audit.plan import MANUAL_CHECK, ORGANISATION_TARGET
from audit.profiles import ResolvedProfile
from audit.vocabulary import Lang, Status


def partial_results(profile: ResolvedProfile) -> list[Result]:
    """One `manual` result per partial control, on the organisation: the part its checks
    leave out. The control passes only when this is attested and its checks pass."""
    rows = []
    for resolved in profile.controls:
        control = resolved.control
        if control.partial is None:
            continue
        checked = sorted({ref.check for ref in control.checks})
        missing = control.partial.get(Lang.EN, "")
        summary = says("partial control: the automated checks ({checked}) cover only part of "
                       "it; not covered: {missing}", checked=", ".join(checked),
                       missing={str(lang): text for lang, text in control.partial.items()})
        rows.append(Result(
            control=control.id, check=MANUAL_CHECK, target=ORGANISATION_TARGET,
            status=Status.MANUAL, summary=str(summary), message=summary,
            evidence=Evidence(expected=missing,
                              details={"checked": checked, "not_covered": missing})))
    return rows


def _matching(result: Result, attestations: list[AttestationRecord]) -> int | None:
    for index, attestation in enumerate(attestations):
        if attestation.control == result.control and fnmatchcase(result.target,
                                                                 attestation.target):
            return index
    return None


def _applied(record: AttestationRecord, expired: bool) -> AppliedAttestation:
    return AppliedAttestation(**record.model_dump(), expired=expired)


def apply_attestations(results: list[Result], active: list[AttestationRecord],
                       expired: list[AttestationRecord]) -> tuple[list[Result],
                                                                  AttestationOutcome]:
    """Turn `manual` results covered by a valid attestation into its pass or fail; say so on
    those an expired one would have covered; report attestations that decided nothing."""
    used: set[int] = set()
    decided = []
    for result in results:
        if result.status is not Status.MANUAL:
            decided.append(result)
            continue
        index = _matching(result, active)
        if index is not None:
            used.add(index)
            record = active[index]
            decided.append(result.model_copy(update={
                "status": Status(record.status.value),
                "summary": f"attested {record.status.value} by {record.attested_by} on "
                           f"{record.date.isoformat()}: {record.explanation}",
                "evidence": result.evidence.model_copy(update={"details": {
                    **result.evidence.details, "before_attestation": result.summary}}),
                "attestation": _applied(record, expired=False)}))
            continue
        stale = _matching(result, expired)
        if stale is None:
            decided.append(result)
            continue
        record = expired[stale]
        decided.append(result.model_copy(update={
            "summary": f"{result.summary} (the attestation by {record.attested_by} expired on "
                       f"{record.valid_until.isoformat()})",
            "attestation": _applied(record, expired=True)}))
    outcome = AttestationOutcome(applied=[a for i, a in enumerate(active) if i in used],
                                 expired=list(expired),
                                 unmatched=[a for i, a in enumerate(active) if i not in used])
    return decided, outcome


def attestation_warnings(outcome: AttestationOutcome) -> list[str]:
    """One line for each attestation that decided nothing or has expired."""
    return [*(f"attestation for {a.control} ({a.target}) matched no manual result: automated "
              f"results are never overridden" for a in outcome.unmatched),
            *(f"attestation for {a.control} ({a.target}) expired on "
              f"{a.valid_until.isoformat()}: the result stays manual" for a in outcome.expired)]
