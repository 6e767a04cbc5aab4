"""Documents an assessor reviews: penetration tests, plans, training records."""

from __future__ import annotations

from pydantic import Field

from audit.facts.evidence import EvidenceFacts, evidence_document
from audit.registry import Finding, Params, check, failed, manual, passed
from audit.vocabulary import Role


class DocumentParams(Params):
    """Which inventory evidence entry to look at, and how old it may be."""

    document: str = Field(min_length=1)
    max_age_days: int = Field(default=365, ge=1)


@check(id="evidence.document", title="A current evidence document is on file",
       applies_to=Role.ORGANISATION, probe=evidence_document, params=DocumentParams)
def document(facts: EvidenceFacts, p: DocumentParams) -> Finding:
    """Organisational measures are proven by documents: the inventory names the file and
    its date; the file must exist and be recent. Its SHA-256 is recorded so that the
    report pins the exact document the assessor reviewed."""
    expected = f"{p.document}, at most {p.max_age_days} days old"
    if facts.file is None:
        return manual(f"no '{p.document}' document named in the inventory", expected=expected)
    if not facts.exists:
        return manual(f"'{p.document}' document not found: {facts.file}", expected=expected,
                      file=facts.file)
    record = {"file": facts.file, "sha256": facts.sha256, "size": facts.size,
              "date": facts.dated.isoformat() if facts.dated else None,
              "date_source": facts.date_source, "issued_by": facts.issued_by}
    age = facts.age_days
    if age is not None and age > p.max_age_days:
        return failed(f"'{p.document}' is {age} days old", observed=f"{age} days",
                      expected=expected, **record)
    return passed(f"'{p.document}' on file, {age} days old", observed=f"{age} days",
                  expected=expected, **record)
